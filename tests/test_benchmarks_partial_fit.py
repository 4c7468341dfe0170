"""benchmarks/partial_fit.py: the update configurations it parses and names."""

import pytest


@pytest.mark.parametrize("text, parsed, name", [
    ("default:0", (None, 0.0, False, 1.0, 0, 0, 1.0, 1, None), "update-defaulte-replay0"),
    ("4:1:fold", (4, 1.0, True, 1.0, 0, 0, 1.0, 1, None), "update-4e-replay1-fold"),
    ("default:0:fold:w20:s3", (None, 0.0, True, 1.0, 20, 0, 3.0, 1, None),
     "update-defaulte-replay0-fold-warmup20-step3"),
    ("5:0.3:lr0.5:b32:s1", (5, 0.3, False, 0.5, 0, 32, 1.0, 1, None),
     "update-5e-replay0.3-lr0.5-batch32"),
    ("default:0:fold:w20:s5:a4", (None, 0.0, True, 1.0, 20, 0, 5.0, 4, None),
     "update-defaulte-replay0-fold-warmup20-step5-average4"),
    ("default:0:fold:a2:r100", (None, 0.0, True, 1.0, 0, 0, 1.0, 2, 100),
     "update-defaulte-replay0-fold-average2-seed100"),
])
def test_updates_parse_to_their_options_and_names(load_benchmark, text, parsed, name):
    partial_fit = load_benchmark("partial_fit")
    assert partial_fit.parse_update(text) == parsed
    assert partial_fit.variant_name(*parsed) == name


@pytest.mark.parametrize("text", ["default:0:s0", "default:0:s-1", "default:0:sinf",
                                  "default:0:s2:s3", "default:0:w-1", "default:0:b0",
                                  "default:0:lr0", "default:0:fast", "default:0:sx",
                                  "default:0:a0", "default:0:a1.5", "default:0:r-1"])
def test_bad_updates_are_refused(load_benchmark, text):
    with pytest.raises(SystemExit, match="is not EPOCHS:REPLAY"):
        load_benchmark("partial_fit").parse_update(text)


def test_an_update_may_name_its_model(load_benchmark):
    partial_fit = load_benchmark("partial_fit")
    assert partial_fit.parse_scoped_update("CREATE=4:1:fold") == \
        ("CREATE", partial_fit.parse_update("4:1:fold"))
    assert partial_fit.parse_scoped_update("4:1") == (None, partial_fit.parse_update("4:1"))
    with pytest.raises(SystemExit, match="names model 'BERT'"):
        partial_fit.parse_scoped_update("BERT=4:1")
