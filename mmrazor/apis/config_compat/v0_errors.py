"""The error of keys of 0.x configs that cannot be translated safely."""


class Untranslatable(ValueError):
    """A 0.x config key (or value) without a safe translation.

    Args:
        key (str): The key (and value) that was refused.
        instead (str): What to use instead.
    """

    def __init__(self, key: str, instead: str) -> None:
        self.key = key
        self.instead = instead
        super().__init__(f'0.x config key {key} cannot be translated '
                         f'safely; use {instead}')
