import sys

CHUNK = "x" * 1023 + "\n"
MIB = 1024 * 1024


def _print_8_mib():
    for _ in range(8 * MIB // len(CHUNK)):
        sys.stdout.write(CHUNK)


def test_prints_8_mib_and_passes():
    _print_8_mib()


def test_prints_8_mib_and_fails():
    _print_8_mib()
    assert False, "failed after printing 8 MiB"
