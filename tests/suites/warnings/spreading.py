import warnings


def warn():
    warnings.warn("spread over two files")
