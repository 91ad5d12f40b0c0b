def test_two():
    assert True


def test_three():
    assert "b" > "a"
