"""A channel mutable whose choice is an arbitrary mask."""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from mmrazor.registry import MODELS
from ..base_mutable import DumpChosen, InvalidChoiceError, MutableFixedError
from .base_mutable_channel import MutableChannel

MaskLike = Union[torch.Tensor, Sequence[bool]]


@MODELS.register_module()
class SimpleMutableChannel(MutableChannel):
    """A channel mutable whose choice is any non-empty channel mask.

    Used by pruning, where any subset of channels may be kept.
    ``current_choice`` is the number of active channels (so arithmetic on
    it gives channel counts); the decision itself is :attr:`current_mask`,
    set with :meth:`set_mask` or with ``current_choice = mask``.

    Args:
        num_channels (int): Channels of the widest layer.
        alias (str, optional): Name shared by mutables that make one
            decision. Defaults to None.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 num_channels: int,
                 alias: Optional[str] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(num_channels, alias=alias, init_cfg=init_cfg)
        self._mask = torch.ones(num_channels, dtype=torch.bool)

    def _as_mask(self, mask: MaskLike) -> torch.Tensor:
        mask = torch.as_tensor(mask).detach().cpu()
        if mask.dtype != torch.bool:
            if mask.is_floating_point():
                raise InvalidChoiceError(
                    f'{self._name()}: a mask must hold bools or 0/1, got '
                    f'dtype {mask.dtype}')
            if ((mask != 0) & (mask != 1)).any():
                raise InvalidChoiceError(
                    f'{self._name()}: a mask must hold bools or 0/1')
            mask = mask.bool()
        if mask.shape != (self.num_channels, ):
            raise InvalidChoiceError(
                f'{self._name()}: mask of shape {tuple(mask.shape)} does '
                f'not fit {self.num_channels} channels')
        if not mask.any():
            raise InvalidChoiceError(
                f'{self._name()}: a mask must keep at least one channel')
        return mask.clone()

    @property
    def current_mask(self) -> torch.Tensor:
        # A copy made with numpy (no torch op, see ``first_k_mask``).
        return torch.from_numpy(self._mask.numpy().copy())

    def set_mask(self, mask: MaskLike) -> None:
        """Select the channels marked True in ``mask``.

        Args:
            mask (Tensor | Sequence[bool]): Of length :attr:`num_channels`.
        """
        mask = self._as_mask(mask)
        if self.is_fixed and not torch.equal(mask, self._mask):
            raise MutableFixedError(f'{self._name()} is fixed; its mask '
                                    'cannot change')
        self._mask = mask

    @property
    def current_choice(self) -> int:
        """The number of active channels."""
        return int(np.count_nonzero(self._mask.numpy()))

    @current_choice.setter
    def current_choice(self, choice: Union[MaskLike, int]) -> None:
        if isinstance(choice, int) and not isinstance(choice, bool):
            # A count keeps the first `choice` channels.
            if not 1 <= choice <= self.num_channels:
                raise InvalidChoiceError(
                    f'{self._name()}: {choice} channels is not in '
                    f'[1, {self.num_channels}]')
            choice = torch.arange(self.num_channels) < choice
        self.set_mask(choice)

    @property
    def choices(self) -> List[int]:
        """Every channel count (a count keeps the first channels)."""
        if self.is_fixed:
            return [self.current_choice]
        return list(range(1, self.num_channels + 1))

    def validate_choice(self, choice: Union[MaskLike, int]) -> None:
        if isinstance(choice, int) and not isinstance(choice, bool):
            super().validate_choice(choice)
        else:
            self._as_mask(choice)

    def fix_chosen(self, chosen: Optional[Union[MaskLike, int]] = None
                   ) -> None:
        """Make a mask permanent.

        Args:
            chosen (Tensor | Sequence[bool] | int, optional): The mask (as
                dumped by :meth:`dump_chosen`, also as a
                :class:`DumpChosen`) or a count of leading channels.
                Defaults to the current mask.
        """
        self.check_not_fixed()
        chosen = self.unwrap_chosen(chosen)
        if chosen is not None:
            self.current_choice = chosen
        self.is_fixed = True

    def dump_chosen(self) -> DumpChosen:
        """The current mask.

        Returns:
            DumpChosen: ``chosen`` is the mask as a list of bools; ``meta``
            holds ``num_channels``.
        """
        return DumpChosen(
            chosen=self._mask.tolist(),
            meta=dict(num_channels=self.num_channels))
