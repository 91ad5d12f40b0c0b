"""The fixture suites are run by the integration tests on copies of themselves
(one suite per directory, each with its own pytest.ini). They must never be
collected as part of a bigger run: crashes/ kills its interpreter, failfast/
and others fail on purpose."""
collect_ignore_glob = ["*"]
