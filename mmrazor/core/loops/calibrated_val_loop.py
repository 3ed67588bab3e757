"""Validation of a weight-sharing supernet with BatchNorm re-calibrated
first (MMRazor 1.x's ``SubnetValLoop`` with ``calibrate_sample_num``)."""
import math
from typing import Any, Dict, List, Optional, Union

from mmengine.evaluator import Evaluator
from mmengine.model import is_model_wrapper
from mmengine.runner import ValLoop
from torch.utils.data import DataLoader

from mmrazor.registry import LOOPS
from ..utils import recalibrate_bn
from .search_loop import search_dataloader


@LOOPS.register_module()
class CalibratedValLoop(ValLoop):
    """mmengine's ``ValLoop`` that re-estimates the BatchNorm statistics of
    the model's current subnet before every validation.

    A supernet's running statistics mix all the subnets trained (or never
    move: BigNAS' attentive config builds its BatchNorm with
    ``momentum=0.0``), so the subnet evaluated, the largest one after a
    BigNAS / AutoSlim step or the fixed one of a ``sub_model``, gets
    statistics of its own: reset, then averaged over
    ``calibrate_sample_num`` training samples (a fixed random subset of the
    config's ``train_dataloader``, batched as it is, drawn once with the
    config's ``randomness.seed``). Weights are not changed.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The validation loader.
        evaluator (Evaluator | dict | list): The evaluator.
        fp16 (bool): Validate with autocast. Defaults to False.
        calibrate_sample_num (int): Training samples for re-calibration;
            0 validates with the statistics as they are. Defaults to 4096,
            as in 1.x.
        calibrate_dataloader (DataLoader | dict, optional): Where the
            samples come from. Defaults to the config's
            ``train_dataloader``.
        evaluate_fixed_subnet (bool): 1.x's switch between the fixed subnet
            and the largest and smallest subnets of a supernet. Only the
            model's current subnet is evaluated here (the fixed one, or the
            largest), so True and False validate the same model; kept so
            1.x configs read unchanged. Defaults to False.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 fp16: bool = False,
                 calibrate_sample_num: int = 4096,
                 calibrate_dataloader: Union[DataLoader, Dict, None] = None,
                 evaluate_fixed_subnet: bool = False) -> None:
        super().__init__(runner, dataloader, evaluator, fp16)
        if isinstance(calibrate_sample_num, bool) or not isinstance(
                calibrate_sample_num, int) or calibrate_sample_num < 0:
            raise ValueError(
                f'{type(self).__name__}: calibrate_sample_num must be an '
                f'integer >= 0, got {calibrate_sample_num!r}')
        self.calibrate_sample_num = calibrate_sample_num
        self.evaluate_fixed_subnet = bool(evaluate_fixed_subnet)
        self._calibrate_source = calibrate_dataloader
        self._calibrate_loader: Optional[DataLoader] = None

    def calibrate_loader(self) -> DataLoader:
        """The re-calibration samples, built at first use.

        Returns:
            DataLoader: ``calibrate_sample_num`` training samples.

        Raises:
            ValueError: No ``calibrate_dataloader`` and no
                ``train_dataloader`` in the config.
        """
        if self._calibrate_loader is None:
            source = self._calibrate_source
            cfg: Any = getattr(self.runner, 'cfg', None) or {}
            if source is None:
                source = cfg.get('train_dataloader')
            if source is None:
                raise ValueError(
                    f'{type(self).__name__} calibrate_sample_num='
                    f'{self.calibrate_sample_num} re-calibrates BatchNorm '
                    'on training data: the config has no train_dataloader '
                    '(give calibrate_dataloader, or calibrate_sample_num=0)')
            seed = (cfg.get('randomness') or {}).get('seed') or 0
            self._calibrate_loader = search_dataloader(
                source, self.calibrate_sample_num, seed)
        return self._calibrate_loader

    def calibrate(self) -> int:
        """Re-estimate the BatchNorm statistics of the current subnet.

        Returns:
            int: The number of batches used (0 when disabled).
        """
        if self.calibrate_sample_num == 0:
            return 0
        loader = self.calibrate_loader()
        model = self.runner.model
        model = model.module if is_model_wrapper(model) else model
        batches = math.ceil(
            min(self.calibrate_sample_num, len(loader.dataset)) /
            max(loader.batch_size or 1, 1))
        return recalibrate_bn(model, loader, batches)

    def run(self) -> dict:
        """Re-calibrate, then validate as ``ValLoop``.

        Returns:
            dict: The metrics.
        """
        used = self.calibrate()
        if used:
            self.runner.logger.info(
                f'{type(self).__name__}: BatchNorm re-calibrated on {used} '
                'training batches')
        return super().run()
