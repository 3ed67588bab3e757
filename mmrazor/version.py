"""Version information of mmrazor."""
__version__ = '2.0.0rc0'


def parse_version_info(version_str: str) -> tuple:
    """Parse a version string into a tuple.

    Args:
        version_str (str): The version string, e.g. ``'2.0.0rc0'``.

    Returns:
        tuple: e.g. ``(2, 0, 0, 'rc0')``.
    """
    parts = []
    for x in version_str.split('.'):
        if x.isdigit():
            parts.append(int(x))
        elif 'rc' in x:
            major, rc = x.split('rc')
            parts.extend([int(major), f'rc{rc}'])
        else:
            parts.append(x)
    return tuple(parts)


version_info = parse_version_info(__version__)
