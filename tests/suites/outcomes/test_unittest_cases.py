import unittest


class TestWithSetUpClass(unittest.TestCase):
    setup_calls = 0

    @classmethod
    def setUpClass(cls):
        cls.setup_calls += 1
        cls.shared = {"ready": True}

    def setUp(self):
        self.local = [1]

    def test_shared_ready(self):
        self.assertTrue(self.shared["ready"])
        self.assertEqual(self.setup_calls, 1)

    def test_local(self):
        self.assertEqual(self.local, [1])

    def test_failure(self):
        self.assertEqual(1, 2)

    @unittest.skip("unittest skip")
    def test_skipped(self):
        self.fail("never runs")

    @unittest.expectedFailure
    def test_expected_failure(self):
        self.assertEqual(1, 0)

    @unittest.expectedFailure
    def test_unexpected_success(self):
        self.assertEqual(1, 1)


class TestBrokenSetUpClass(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise RuntimeError("setUpClass exploded")

    def test_one(self):
        pass

    def test_two(self):
        pass


class TestTearDownFails(unittest.TestCase):
    def tearDown(self):
        raise RuntimeError("tearDown exploded")

    def test_with_bad_teardown(self):
        pass
