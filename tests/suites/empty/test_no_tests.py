"""A test module without tests: collection finds nothing (pytest exit code 5)."""


def helper_not_a_test():
    return 1
