"""Quantization loops of the 1.x toolbox: ``PTQLoop`` (post-training),
``QATEpochBasedLoop``, ``LSQEpochBasedLoop`` and ``QATValLoop``
(quantization-aware training)."""
import inspect
from typing import (Any, Dict, Iterable, List, Optional, Sequence, Tuple,
                    Union)

import torch
from mmengine.dist import all_reduce_params, is_distributed
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop, TestLoop, ValLoop, autocast
from mmengine.runner.loops import _parse_losses
from torch import nn
from torch.ao.nn.intrinsic.qat.modules.conv_fused import _ConvBnNd
from torch.ao.quantization import (disable_fake_quant, disable_observer,
                                   enable_fake_quant, enable_observer)
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader

from mmrazor.models.quantizers import (LearnableFakeQuantize, correct_biases,
                                       learn_rounding)
from mmrazor.registry import LOOPS

#: torch's fused QAT conv-bn(-relu) modules (1d/2d/3d).
_FUSED_CONV_BN = (_ConvBnNd, )


def set_calibration_mode(model: nn.Module, calibrating: bool) -> None:
    """Observers on and fake-quants off (``calibrating``), or observers off
    and fake-quants on (evaluating the quantized model).

    Args:
        model (nn.Module): A model with torch.ao fake-quants.
        calibrating (bool): Which of the two.
    """
    if calibrating:
        model.apply(enable_observer)
        model.apply(disable_fake_quant)
    else:
        model.apply(disable_observer)
        model.apply(enable_fake_quant)


def calibrate_prepared(prepared: nn.Module,
                       batches: Iterable[Any]) -> nn.Module:
    """Calibrate a prepared (fake-quant) model on ``batches`` outside a
    runner: in eval mode, observers on and fake-quants off while the
    batches run, then observers off and fake-quants on.

    Args:
        prepared (nn.Module): E.g. ``quantizer.prepare(model)``.
        batches (Iterable): Inputs of ``prepared``, one call each.

    Returns:
        nn.Module: ``prepared`` itself, calibrated, in eval mode.
    """
    prepared.eval()
    set_calibration_mode(prepared, calibrating=True)
    with torch.no_grad():
        for batch in batches:
            prepared(batch)
    set_calibration_mode(prepared, calibrating=False)
    return prepared


@LOOPS.register_module()
class PTQLoop(TestLoop):
    """Calibrate the fake-quants of an :class:`MMArchitectureQuant`, then
    evaluate the fake-quant model.

    Calibration runs ``calibrate_steps`` batches of ``calibrate_dataloader``
    through the model in eval mode, observers recording and fake-quants off
    (the outputs are float); then observers stop and fake-quants use the
    recorded ranges while ``dataloader`` is evaluated.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The test loader.
        evaluator (Evaluator | dict | list): The evaluator.
        calibrate_dataloader (DataLoader | dict): The calibration loader.
        calibrate_steps (int): Batches calibrated (fewer if the loader is
            shorter). Defaults to 32.
        fp16 (bool): Evaluate with autocast. Defaults to False.
        only_val (bool): Skip calibration and evaluate the model as it is
            (e.g. a calibrated checkpoint). Defaults to False.
        bias_correction (bool): After calibrating, run the calibration
            batches once more through the fake-quant model and subtract
            from each quantized layer's bias the mean output shift its
            rounded weights cause (:func:`correct_biases`). Defaults to
            False.
        learned_rounding (dict, optional): After calibrating (before any
            bias correction), learn how each quantized layer rounds its
            weights on the calibration batches (AdaRound,
            :func:`learn_rounding`); the dict holds its keyword arguments,
            e.g. ``dict(iters=500)`` (``{}``: its defaults). Defaults to
            None (round to nearest).

    Attributes:
        calibrated_steps (int): Batches calibrated by the latest run.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 calibrate_dataloader: Union[DataLoader, Dict],
                 calibrate_steps: int = 32,
                 fp16: bool = False,
                 only_val: bool = False,
                 bias_correction: bool = False,
                 learned_rounding: Optional[Dict] = None) -> None:
        super().__init__(runner, dataloader, evaluator, fp16)
        if (isinstance(calibrate_steps, bool)
                or not isinstance(calibrate_steps, int)
                or calibrate_steps < 1):
            raise ValueError('PTQLoop: calibrate_steps must be a positive '
                             f'int, got {calibrate_steps!r}')
        if isinstance(calibrate_dataloader, dict):
            calibrate_dataloader = runner.build_dataloader(
                calibrate_dataloader, seed=runner.seed)
        self.calibrate_dataloader = calibrate_dataloader
        self.calibrate_steps = calibrate_steps
        self.only_val = only_val
        self.bias_correction = bool(bias_correction)
        if learned_rounding is not None and not isinstance(
                learned_rounding, dict):
            raise ValueError('PTQLoop: learned_rounding must be a dict of '
                             'learn_rounding arguments or None, got '
                             f'{learned_rounding!r}')
        if learned_rounding:
            known = set(inspect.signature(learn_rounding).parameters) - {
                'model', 'run_batches'
            }
            unknown = sorted(set(learned_rounding) - known)
            if unknown:
                raise ValueError(f'PTQLoop: learned_rounding has unknown '
                                 f'key(s) {unknown}; known: {sorted(known)}')
        self.learned_rounding = learned_rounding
        self.calibrated_steps = 0

    @property
    def _algorithm(self) -> nn.Module:
        model = self.runner.model
        return model.module if is_model_wrapper(model) else model

    @torch.no_grad()
    def calibrate(self) -> int:
        """Run the calibration batches.

        Returns:
            int: The number of batches run.
        """
        algorithm = self._algorithm
        set_calibration_mode(algorithm, calibrating=True)
        steps = self._run_calibration_batches()
        set_calibration_mode(algorithm, calibrating=False)
        logger = MMLogger.get_current_instance()
        logger.info(f'PTQLoop: calibrated on {steps} batch(es) '
                    f'(calibrate_steps={self.calibrate_steps})')
        if self.learned_rounding is not None:
            layers = learn_rounding(algorithm,
                                    self._run_calibration_batches,
                                    **self.learned_rounding)
            logger.info(f'PTQLoop: learned the rounding of {layers} '
                        'quantized layer(s)')
        if self.bias_correction:
            layers = correct_biases(algorithm, self._run_calibration_batches)
            logger.info(f'PTQLoop: corrected the biases of {layers} '
                        'quantized layer(s)')
        return steps

    def _run_calibration_batches(self) -> int:
        """Run up to ``calibrate_steps`` calibration batches through the
        model; returns how many ran."""
        steps = 0
        for data_batch in self.calibrate_dataloader:
            if steps == self.calibrate_steps:
                break
            self._algorithm.calibrate_step(data_batch)
            steps += 1
        return steps

    def run(self) -> dict:
        """Calibrate (unless ``only_val``), then evaluate.

        Returns:
            dict: The metrics of the fake-quant model.
        """
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        self.runner.model.eval()
        if self.only_val:
            set_calibration_mode(self._algorithm, calibrating=False)
            self.calibrated_steps = 0
        else:
            self.calibrated_steps = self.calibrate()
        self.test_loss.clear()
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        if self.test_loss:
            metrics.update(_parse_losses(self.test_loss, 'test'))
        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics


# --------------------------------------------------------------------- QAT
def freeze_bn_statistics(model: nn.Module) -> int:
    """Stop updating the batch-norm statistics of ``model``.

    Fused QAT conv-bn modules (``ConvBn2d``, ``ConvBnReLU2d``, ...) get
    torch's ``freeze_bn_stats`` (their BN normalises with its running
    statistics and keeps them, also after ``model.train()``); any other
    batch norm is put in eval mode (to be done again after each
    ``model.train()``).

    Args:
        model (nn.Module): The model (or its wrapper).

    Returns:
        int: The number of batch norms frozen.
    """
    frozen_bns = set()
    for module in model.modules():
        if isinstance(module, _FUSED_CONV_BN):
            module.freeze_bn_stats()
            frozen_bns.add(id(module.bn))
    count = len(frozen_bns)
    for module in model.modules():
        if isinstance(module, _BatchNorm) and id(module) not in frozen_bns:
            module.eval()
            count += 1
    return count


def set_training_quant_mode(model: nn.Module, observing: bool) -> None:
    """Fake-quants on, observers on (``observing``) or off.

    Args:
        model (nn.Module): A model with torch.ao fake-quants.
        observing (bool): Whether observers keep updating the ranges.
    """
    model.apply(enable_fake_quant)
    model.apply(enable_observer if observing else disable_observer)


def _check_epoch_begin(loop: str, name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or (
            value != -1 and value < 1):
        raise ValueError(f'{loop}: {name} must be -1 (never) or an epoch '
                         f'number >= 1, got {value!r}')


@LOOPS.register_module()
class QATEpochBasedLoop(EpochBasedTrainLoop):
    """Quantization-aware training of an :class:`MMArchitectureQuant`, epoch
    by epoch (the 1.x loop).

    Each epoch trains the fake-quant model (fake-quants on; observers on,
    so e.g. moving-average ranges follow the training activations, until
    epoch ``disable_observer_begin``); from epoch ``freeze_bn_begin`` on,
    the batch-norm statistics are frozen (the fused conv-bn modules fold
    the running statistics into the weights, as at inference). At the end
    of each epoch, before the checkpoint hook saves the model, observers
    are switched off, so a saved checkpoint evaluates as it was validated.
    Epochs are numbered from 1 (``freeze_bn_begin=1``: from the start).

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The training loader.
        max_epochs (int): Epochs trained.
        val_begin (int): First epoch validated. Defaults to 1.
        val_interval (int): Validate every ``val_interval`` epochs.
            Defaults to 1.
        freeze_bn_begin (int): First epoch with frozen BN statistics; -1:
            never. Defaults to -1.
        dynamic_intervals (list[tuple[int, int]], optional): mmengine's
            ``(milestone, interval)`` pairs of validation intervals.
        disable_observer_begin (int): First epoch whose training leaves the
            observers off (ranges fixed); -1: observers on in every epoch.
            Defaults to -1.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 max_epochs: int,
                 val_begin: int = 1,
                 val_interval: int = 1,
                 freeze_bn_begin: int = -1,
                 dynamic_intervals: Optional[List[Tuple[int, int]]] = None,
                 disable_observer_begin: int = -1) -> None:
        name = type(self).__name__
        _check_epoch_begin(name, 'freeze_bn_begin', freeze_bn_begin)
        _check_epoch_begin(name, 'disable_observer_begin',
                           disable_observer_begin)
        super().__init__(runner, dataloader, max_epochs, val_begin,
                         val_interval, dynamic_intervals)
        self.freeze_bn_begin = freeze_bn_begin
        self.disable_observer_begin = disable_observer_begin

    def _reached(self, begin: int) -> bool:
        """Whether the epoch about to run (``self._epoch + 1``) is at or
        after the epoch ``begin`` (-1: never)."""
        return begin > 0 and self._epoch + 1 >= begin

    def prepare_for_run_epoch(self) -> None:
        """Set fake-quants, observers and BN statistics for the epoch (the
        model is in train mode)."""
        model = self.runner.model
        set_training_quant_mode(
            model, observing=not self._reached(self.disable_observer_begin))
        if self._reached(self.freeze_bn_begin):
            freeze_bn_statistics(model)

    def prepare_for_val(self) -> None:
        """Observers off, fake-quants on: the model as it is evaluated."""
        set_calibration_mode(self.runner.model, calibrating=False)

    def run_epoch(self) -> None:
        """Train one epoch of the fake-quant model."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        self.prepare_for_run_epoch()
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)
        self.prepare_for_val()
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1


@LOOPS.register_module()
class LSQEpochBasedLoop(QATEpochBasedLoop):
    """LSQ (Esser et al., ICLR 2020) training of an
    :class:`MMArchitectureQuant` whose fake-quants are
    ``LearnableFakeQuantize`` (the 1.x loop).

    The first training batch of a run that starts from scratch (epoch 0,
    iteration 0) runs with the observers on: the LSQ observers set each
    step size from that batch (``s = 2 * mean(|x|) / sqrt(quant_max)``).
    Then the observers are switched off for good and the step sizes are
    parameters trained with the network. A resumed run keeps the step sizes
    of its checkpoint. In distributed runs the initial step sizes are
    averaged over the ranks.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The training loader.
        max_epochs (int): Epochs trained.
        val_begin (int): First epoch validated. Defaults to 1.
        val_interval (int): Validate every ``val_interval`` epochs.
            Defaults to 1.
        freeze_bn_begin (int): First epoch with frozen BN statistics
            (numbered from 1); -1: never. Defaults to -1.
        dynamic_intervals (list[tuple[int, int]], optional): mmengine's
            ``(milestone, interval)`` pairs of validation intervals.

    Attributes:
        initialised_scales (bool): Whether this run has initialised the
            step sizes (or found them in a resumed checkpoint).
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 max_epochs: int,
                 val_begin: int = 1,
                 val_interval: int = 1,
                 freeze_bn_begin: int = -1,
                 dynamic_intervals: Optional[List[Tuple[int, int]]] = None
                 ) -> None:
        super().__init__(
            runner,
            dataloader,
            max_epochs,
            val_begin,
            val_interval,
            freeze_bn_begin=freeze_bn_begin,
            dynamic_intervals=dynamic_intervals)
        self.initialised_scales = False

    def prepare_for_run_epoch(self) -> None:
        """Fake-quants on, observers off (the step sizes are learned), BN
        statistics frozen from ``freeze_bn_begin``."""
        model = self.runner.model
        set_training_quant_mode(model, observing=False)
        if self._reached(self.freeze_bn_begin):
            freeze_bn_statistics(model)

    def run_epoch(self) -> None:
        """Train one epoch; the run's first batch initialises the step
        sizes."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        self.prepare_for_run_epoch()
        if self._epoch > 0 or self._iter > 0:
            self.initialised_scales = True  # resumed: keep its step sizes
        for idx, data_batch in enumerate(self.dataloader):
            if not self.initialised_scales:
                set_training_quant_mode(self.runner.model, observing=True)
            self.run_iter(idx, data_batch)
            if not self.initialised_scales:
                self._average_scales_over_ranks()
                set_training_quant_mode(self.runner.model, observing=False)
                self.initialised_scales = True
        self.prepare_for_val()
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def _average_scales_over_ranks(self) -> None:
        if is_distributed():
            learnable = [
                param for module in self.runner.model.modules()
                if isinstance(module, LearnableFakeQuantize)
                for param in (module.scale, module.zero_point)
            ]
            all_reduce_params(learnable, op='mean')


@LOOPS.register_module()
class QATValLoop(ValLoop):
    """Validate the fake-quant model and the float architecture (the 1.x
    loop).

    Two passes over ``dataloader``: the fake-quant model (observers off,
    fake-quants on), then the float ``architecture`` it was built from -
    same weights and BN statistics, no fake-quants, fed by the algorithm's
    data preprocessor. As in 1.x, the metrics of the first are prefixed
    ``qat.`` and those of the second ``original.`` (``qat.accuracy/top1``,
    ``original.accuracy/top1``); unlike 1.x, which called
    ``after_val_epoch`` once per pass, both sets go to one
    ``after_val_epoch`` call (the ``qat.`` ones first, so
    ``CheckpointHook(save_best='auto')`` follows the quantized model) and
    are both returned.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The validation loader.
        evaluator (Evaluator | dict | list): The evaluator.
        fp16 (bool): Validate with autocast. Defaults to False.
    """
    #: Prefix of the fake-quant model's metrics.
    QAT_PREFIX = 'qat.'
    #: Prefix of the float architecture's metrics.
    FLOAT_PREFIX = 'original.'

    @property
    def _algorithm(self) -> nn.Module:
        """The ``MMArchitectureQuant``: the model, or the student of a
        distiller (QAT with knowledge distillation)."""
        model = self.runner.model
        algorithm = model.module if is_model_wrapper(model) else model
        student = getattr(algorithm, 'architecture', None)
        if not hasattr(algorithm, 'qmodels') and hasattr(student, 'qmodels'):
            algorithm = student
        if not isinstance(getattr(algorithm, 'architecture', None),
                          nn.Module):
            raise TypeError(
                'QATValLoop: the model must have a float `architecture` '
                f'(an MMArchitectureQuant), got {type(algorithm).__name__}')
        return algorithm

    def run(self) -> dict:
        """Validate both models.

        Returns:
            dict: ``qat.*`` and ``original.*`` metrics.
        """
        algorithm = self._algorithm
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')
        self.runner.model.eval()
        set_calibration_mode(algorithm, calibrating=False)
        self.val_loss.clear()
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)
        qat_metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        if self.val_loss:
            qat_metrics.update(_parse_losses(self.val_loss, 'val'))
        metrics = {self.QAT_PREFIX + k: v for k, v in qat_metrics.items()}
        for idx, data_batch in enumerate(self.dataloader):
            self.run_float_iter(idx, data_batch)
        float_metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        metrics.update(
            {self.FLOAT_PREFIX + k: v
             for k, v in float_metrics.items()})
        self.runner.call_hook('after_val_epoch', metrics=metrics)
        self.runner.call_hook('after_val')
        return metrics

    @torch.no_grad()
    def run_float_iter(self, idx: int, data_batch: Union[Dict,
                                                         Sequence]) -> None:
        """Run one batch through the float architecture.

        Args:
            idx (int): The batch index.
            data_batch (dict | Sequence): A batch of the loader.
        """
        algorithm = self._algorithm
        self.runner.call_hook(
            'before_val_iter', batch_idx=idx, data_batch=data_batch)
        data = algorithm.data_preprocessor(data_batch, False)
        with autocast(enabled=self.fp16):
            if isinstance(data, dict):
                outputs = algorithm.architecture(**data, mode='predict')
            else:
                outputs = algorithm.architecture(*data, mode='predict')
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook(
            'after_val_iter',
            batch_idx=idx,
            data_batch=data_batch,
            outputs=outputs)
