import sidefx_helper


def test_helper_registry_visible():
    assert sidefx_helper.REGISTRY == ["registered-by-import"]
