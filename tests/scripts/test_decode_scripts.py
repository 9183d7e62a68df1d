"""scripts/ab_decode.py and scripts/profile_decode.py on the committed copy-task Transformer (the
copy_checkpoint fixture): every fast path's reference gives the same translations, and the profile names its
stages."""

import ab_decode  # scripts/ on sys.path (tests/scripts/conftest.py)
import profile_decode
import pytest


@pytest.mark.parametrize("beam", [1, 5])
def test_every_fast_path_gives_its_references_translations(copy_checkpoint, tmp_path, beam, capsys):
    argv = ["--checkpoint", str(copy_checkpoint), "--sentences", "12", "--beam", str(beam), "--runs", "1",
            "--cache-dir", str(tmp_path), "--without", *sorted(ab_decode.variants())]  # fmt: skip
    assert ab_decode.main(argv) == 0
    out = capsys.readouterr().out
    assert "12 test verses" in out and "same best hypothesis 100.0 %" in out


def test_the_profile_names_its_stages(copy_checkpoint, tmp_path):
    out = tmp_path / "profile.txt"
    argv = ["--checkpoint", str(copy_checkpoint), "--sentences", "6", "--beam", "5",
            "--cache-dir", str(tmp_path), "--rows", "5", "--out", str(out)]  # fmt: skip
    assert profile_decode.main(argv) == 0
    text = out.read_text()
    assert "| model step (Stepper.step) |" in text and "| whole translate_ids |" in text
    assert "aten::" in text  # the torch.profiler tables
