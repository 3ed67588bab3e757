"""Post-training quantization loop (the 1.x ``PTQLoop``)."""
from typing import Dict, List, Union

import torch
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop
from mmengine.runner.loops import _parse_losses
from torch import nn
from torch.ao.quantization import (disable_fake_quant, disable_observer,
                                   enable_fake_quant, enable_observer)
from torch.utils.data import DataLoader

from mmrazor.registry import LOOPS


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
                 only_val: bool = False) -> None:
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
        steps = 0
        for data_batch in self.calibrate_dataloader:
            if steps == self.calibrate_steps:
                break
            algorithm.calibrate_step(data_batch)
            steps += 1
        set_calibration_mode(algorithm, calibrating=False)
        MMLogger.get_current_instance().info(
            f'PTQLoop: calibrated on {steps} batch(es) '
            f'(calibrate_steps={self.calibrate_steps})')
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
