import pytest

from raykd.eval.templates import CIFAR_TEMPLATES, IMAGENET_TEMPLATES, get_templates, list_templates


def test_openai_template_sets():
    assert len(IMAGENET_TEMPLATES) == 80 == len(set(IMAGENET_TEMPLATES))
    assert len(CIFAR_TEMPLATES) == 18
    for name in list_templates():
        assert all(t.count("{}") == 1 for t in get_templates(name))
    assert get_templates("CIFAR100") == get_templates("cifar10") == list(CIFAR_TEMPLATES)
    assert get_templates("ImageNet")[0] == "a bad photo of a {}."


def test_unknown_template_set_suggests_close_matches():
    with pytest.raises(ValueError, match="cifar10"):
        get_templates("cifar1O")
