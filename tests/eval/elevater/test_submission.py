"""EvalAI submission files: per-data-set records and all_predictions.zip round-trip."""
import json
import zipfile

import numpy as np
import pytest

from raykd.eval.elevater.submission import (SUBMISSION_JSON, combine, prediction_record, read_submission,
                                            write_prediction_file, write_submission)

PARAMS = {"num_params": 1000, "num_visual_params": 400, "num_backbone_params": 1000}


def probs(n: int, c: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(c), size=n).astype(np.float32)


def test_round_trip_one_entry_per_dataset(tmp_path):
    # the toolkit writes one record per seed; the submission merges them per data set
    records = [prediction_record("tiny", "cifar-10", 5, [seed], [probs(7, 10, seed)],
                                 PARAMS | {"num_trainable_params": 100 + seed}) for seed in range(3)]
    records.append(prediction_record("tiny", "hateful-memes", 5, [0, 1, 2], [probs(4, 2, s) for s in range(3)],
                                     PARAMS | {"num_trainable_params": 10}))
    path = write_submission(tmp_path / "all_predictions.zip", records)
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == [SUBMISSION_JSON]
    back = read_submission(path)
    assert list(back) == ["cifar-10", "hateful-memes"]
    cifar = back["cifar-10"]
    assert cifar["predictions"].shape == (3, 7, 10) and cifar["rnd_seeds"] == [0, 1, 2]
    assert cifar["num_trainable_params"] == pytest.approx(101) and cifar["n_shot"] == 5
    assert cifar["model_name"] == "tiny" and cifar["num_visual_params"] == 400
    np.testing.assert_allclose(cifar["predictions"][1], probs(7, 10, 1), atol=5e-7)
    assert back["hateful-memes"]["predictions"].shape == (3, 4, 2)


def test_record_fields_and_rounding(tmp_path):
    record = prediction_record("m", "dtd", 0, [0], [np.array([[0.1234567891, 0.8765432109]])],
                               PARAMS | {"num_trainable_params": 0})
    assert set(record) == {"model_name", "dataset_name", "num_trainable_params", "num_params", "num_visual_params",
                           "num_backbone_params", "n_shot", "rnd_seeds", "predictions"}
    assert record["predictions"] == [[[0.123457, 0.876543]]]
    path = write_prediction_file(tmp_path / "predictions" / "dtd.json", record)
    assert json.loads(path.read_text()) == record


def test_mismatches_are_errors():
    a = prediction_record("m", "dtd", 5, [0], [probs(3, 4, 0)], PARAMS)
    b = prediction_record("m", "dtd", 20, [1], [probs(3, 4, 1)], PARAMS)
    with pytest.raises(ValueError, match="disagree on 'n_shot'"):
        combine([a, b])
    with pytest.raises(ValueError, match="2 seeds but 1"):
        prediction_record("m", "dtd", 5, [0, 1], [probs(3, 4, 0)], PARAMS)
    with pytest.raises(ValueError, match="one shape"):
        prediction_record("m", "dtd", 5, [0, 1], [probs(3, 4, 0), probs(2, 4, 0)], PARAMS)
