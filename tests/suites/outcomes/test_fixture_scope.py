"""Module, class and session fixtures are set up once per worker process."""
import pytest

from conftest import record_setup, setups_in_this_process


@pytest.fixture(scope="module")
def module_resource():
    record_setup("test_fixture_scope::module")
    yield "module-value"


@pytest.fixture(scope="class")
def class_resource():
    record_setup("test_fixture_scope::TestClassScope")
    yield "class-value"


def test_module_first(module_resource, session_resource):
    assert module_resource == "module-value"
    assert setups_in_this_process("test_fixture_scope::module") == 1
    assert setups_in_this_process("session") == 1


def test_module_second(module_resource):
    assert setups_in_this_process("test_fixture_scope::module") == 1


def test_module_third(module_resource):
    assert setups_in_this_process("test_fixture_scope::module") == 1


class TestClassScope:
    def test_class_first(self, class_resource, module_resource):
        assert setups_in_this_process("test_fixture_scope::TestClassScope") == 1
        assert setups_in_this_process("test_fixture_scope::module") == 1

    def test_class_second(self, class_resource):
        assert setups_in_this_process("test_fixture_scope::TestClassScope") == 1

    def test_class_third(self, class_resource, session_resource):
        assert setups_in_this_process("test_fixture_scope::TestClassScope") == 1
        assert setups_in_this_process("session") == 1


def test_module_last(module_resource):
    assert setups_in_this_process("test_fixture_scope::module") == 1
