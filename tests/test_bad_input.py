"""Bad input, the cases of the robustness issues that no other test file covers, and an index of
where the rest are tested. Each ends in a message naming the problem and the fix.

Here (Part A images and masks as users have them; rules in src/fundiff/inputs.py):
- masks with two values of any kind (0/1, 0/255, boolean, two greys, 16-bit, float, RGB) read as
  masks with a note: test_two_valued_masks_are_masks; JPEG-blurred edges thresholded with a note
  of the hole fraction, a grey ramp refused: test_grey_masks_are_thresholded_with_a_note_or_refused
- empty and whole-image masks (files and rectangles) refused by the loaders themselves:
  test_empty_and_whole_image_masks_are_refused_by_the_loaders
- float TIFFs read on the [0, 1] scale (the mean-0.46 case), outside [0, 1], NaN, float colour and
  32-bit integer files refused: test_float_images_are_read_on_the_unit_scale
- 16-bit grey and 16-bit colour scaled, pixel values checked: test_sixteen_bit_images_are_scaled_not_clipped
- 1x1, 3000x4 and 8:1 inputs refused naming the size and `crop:`, tiny crops refused, non-square
  crops noted: test_tiny_and_long_inputs_are_refused_unless_cropped
- one log line per conversion (grey to RGB, alpha on white, EXIF rotation, first frame, 1-bit,
  inverted background, centre square), values checked: test_every_conversion_leaves_one_line
- past the pixel limit, no DecompressionBombWarning: test_pixel_limit_refuses_bombs_without_pillows_warning
- the shipped inputs pass the rules: test_shipped_input_files_pass_the_rules

Elsewhere:
- config files read strictly at DAG build (a key given twice, tabs, an empty file, a top-level
  list, non-text keys, `1e-4` read as a float, BOM + CRLF accepted, out-of-range list entries
  naming the entry): tests/test_configfile.py (unit tests and three `snakemake -n` runs)
- --config overrides with nested numbers and booleans, range errors naming the range, an unknown
  key naming the closest valid one in a few lines, --configfile slips Snakemake parses first
  (its message, then `python -m fundiff.configfile`), an unusable data.root:
  tests/test_configfile.py (test_nested_overrides_*, test_override_errors_*,
  test_configfile_slips_snakemake_reads_first, test_unusable_data_root_is_named)
- a machine without a usable GPU (the CPU estimate, a GPU PyTorch cannot use): tests/test_machine.py
- config (unknown key, wrong type, out-of-range t / sigma / gamma / i_start / epoch, empty list,
  unknown prompt, bad mask rectangle, unknown Part A model) at DAG build, nothing written:
  tests/test_workflow.py::test_bad_config_fails_at_dag_build_naming_the_key,
  tests/test_part_a.py::test_bad_part_a_config
- missing, truncated, corrupt, RGBA, 16-bit, CMYK and huge images; wrong-size, all-zero and
  all-one masks: tests/test_part_a.py::test_load_png_converts_and_rejects, tests/test_deepfloyd.py
  (rgb inputs, masks, test_whole_image_masks_are_refused)
- corrupt, truncated and foreign checkpoints: tests/test_train.py::test_load_checkpoint_*
- MNIST failing its hash, a corrupt download, nothing left behind: tests/test_data.py
- gated, not found, offline and unreachable DeepFloyd weights, token never shown:
  tests/test_deepfloyd.py::test_fetch_*
- a killed training job, identical reruns: tests/test_faults.py
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from fundiff import device, inputs, train

from .test_train import small_recipe


def test_cuda_requested_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(device.DeviceError) as err:
        device.resolve("cuda")
    msg = str(err.value)
    assert "no CUDA GPU" in msg and "device: auto" in msg and "--config device=cpu" in msg
    assert device.resolve("auto").device.type == "cpu"  # auto never fails


def test_checkpoint_from_a_different_width(tmp_path):
    recipe = small_recipe("ddpm/class_cond")
    path = tmp_path / "epoch_001.pt"
    train.save_checkpoint(train.init_checkpoint(recipe, "ddpm/class_cond", 0), path)
    with pytest.raises(train.CheckpointError) as err:
        train.load_checkpoint(path, expect_recipe={**recipe, "hidden": recipe["hidden"] * 2})
    msg = str(err.value)
    assert "different settings" in msg and "hidden" in msg and "Delete" in msg


def test_unknown_config_values_at_runtime_are_refused():
    with pytest.raises(ValueError, match="device must be one of"):
        device.resolve("tpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        device.resolve("cpu", "fp8")


# ---------------------------------------------------------------- Part A images and masks as users have them


def _png16(arr) -> bytes:
    """A 16-bit PNG of a [H, W, C] uint16 array (C = 1 grey, 3 RGB), written by hand: Pillow cannot."""
    import struct
    import zlib

    h, w, c = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 3: 2}[c], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _png_header(w: int, h: int) -> bytes:
    """A PNG that claims w x h pixels (a decompression bomb's header; the data is never reached)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def _notes(caplog, words: str) -> int:
    return sum(words in r.getMessage() for r in caplog.records)


@pytest.fixture
def notes(caplog):
    import logging

    caplog.set_level(logging.INFO, logger="fundiff")
    return caplog


RECT = np.zeros((64, 64), dtype=bool)
RECT[10:30, 20:40] = True  # 400 px, 9.8 % of 64x64


@pytest.mark.parametrize(
    "kind, save",
    [
        ("0/1 uint8", lambda p: Image.fromarray(RECT.astype(np.uint8)).save(p / "m.png")),
        ("0/255", lambda p: Image.fromarray(RECT.astype(np.uint8) * 255).save(p / "m.png")),
        ("boolean (1-bit)", lambda p: Image.fromarray(RECT).save(p / "m.png")),
        ("two grey levels", lambda p: Image.fromarray(np.where(RECT, 200, 10).astype(np.uint8)).save(p / "m.png")),
        ("16-bit 0/65535", lambda p: (p / "m.png").write_bytes(_png16(RECT[..., None].astype(np.uint16) * 65535))),
        ("float 0/1", lambda p: Image.fromarray(RECT.astype(np.float32), "F").save(p / "m.tif")),
        ("RGB 0/255", lambda p: Image.fromarray(np.repeat(RECT[..., None], 3, -1).astype(np.uint8) * 255).save(p / "m.png")),
    ],
)
def test_two_valued_masks_are_masks(tmp_path, notes, kind, save):
    save(tmp_path)
    path = next(tmp_path.glob("m.*"))
    mask = inputs.load_mask(path, 64)
    assert torch.equal(mask[0, 0].bool(), torch.from_numpy(RECT)), kind
    assert _notes(notes, "a two-valued mask") == 1 and "400 hole pixels, 9.8 % of the image" in notes.text


def test_grey_masks_are_thresholded_with_a_note_or_refused(tmp_path, notes):
    Image.fromarray(RECT.astype(np.uint8) * 255).save(tmp_path / "blurred.jpg", quality=75)  # JPEG-blurred edges
    mask = inputs.load_mask(tmp_path / "blurred.jpg", 64)
    assert torch.equal(mask[0, 0].bool(), torch.from_numpy(RECT))
    assert _notes(notes, "not a two-valued mask: thresholded at 127.5, hole = 400 pixels, 9.8 % of the image") == 1
    ramp = np.tile((np.arange(64) * 4).astype(np.uint8), (64, 1))
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    with pytest.raises(ValueError, match=r"ramp.png is not a black-and-white mask: 50% of its pixels are mid-grey"):
        inputs.load_mask(tmp_path / "ramp.png", 64)


def test_empty_and_whole_image_masks_are_refused_by_the_loaders(tmp_path):
    for value in (255, 1):
        Image.new("L", (64, 64), value).save(tmp_path / f"all{value}.png")
        with pytest.raises(ValueError, match=f"is {value} everywhere, so it covers the whole 64x64 image"):
            inputs.load_mask(tmp_path / f"all{value}.png", 64)
    Image.new("L", (64, 64), 0).save(tmp_path / "none.png")
    with pytest.raises(ValueError, match="has no white pixel: nothing to fill"):
        inputs.load_mask(tmp_path / "none.png", 64)
    with pytest.raises(ValueError, match=r"mask rectangle \[0, 28, 0, 28\] covers the whole 28x28 image"):
        inputs.rect_mask([0, 28, 0, 28])


def test_float_images_are_read_on_the_unit_scale(tmp_path, notes):
    """The issue's 32-bit float TIFF (values in [0, 1], mean 0.46) keeps its values; outside [0, 1] is refused."""
    ramp = np.linspace(0, 0.92, 64 * 64, dtype=np.float32).reshape(64, 64)  # mean 0.46, max 0.92
    Image.fromarray(ramp, "F").save(tmp_path / "ramp.tif")
    assert abs(inputs.load_rgb({"source": str(tmp_path / "ramp.tif")}).mean().item() - 0.46) < 0.003
    assert abs(inputs.load_png(tmp_path / "ramp.tif").mean().item() - 0.46) < 0.003
    halves = np.full((64, 64), 0.2, dtype=np.float32)
    halves[:, 32:] = 0.8
    Image.fromarray(halves, "F").save(tmp_path / "halves.tif")
    x = inputs.load_rgb({"source": str(tmp_path / "halves.tif")})
    assert torch.allclose(x[0, :, 5, 5], torch.full((3,), 51 / 255)) and torch.allclose(x[0, :, 5, 60], torch.full((3,), 204 / 255))
    assert _notes(notes, "32-bit float image (values 0.2..0.8) read on the [0, 1] scale") == 1
    Image.fromarray(halves * 255, "F").save(tmp_path / "255.tif")
    with pytest.raises(ValueError, match=r"values in \[51, 204\]; Part A reads float images on the \[0, 1\] scale"):
        inputs.load_rgb({"source": str(tmp_path / "255.tif")})
    Image.fromarray(np.full((64, 64), np.nan, dtype=np.float32), "F").save(tmp_path / "nan.tif")
    with pytest.raises(ValueError, match="NaN or infinite values"):
        inputs.load_png(tmp_path / "nan.tif")
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "rgb_float.tif", np.stack([halves] * 3, -1), photometric="rgb")
    with pytest.raises(ValueError, match="TIFF that Pillow cannot decode"):
        inputs.load_rgb({"source": str(tmp_path / "rgb_float.tif")})
    tifffile.imwrite(tmp_path / "int32.tif", np.full((64, 64), 70000, dtype=np.int32))
    with pytest.raises(ValueError, match="32-bit or signed integers .* no agreed white level"):
        inputs.load_rgb({"source": str(tmp_path / "int32.tif")})


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path, notes):
    grey = np.zeros((64, 64, 1), dtype=np.uint16)
    grey[:, 22:43], grey[:, 43:] = 32768, 65535
    (tmp_path / "grey16.png").write_bytes(_png16(grey))
    x = inputs.load_rgb({"source": str(tmp_path / "grey16.png")})
    assert [round(x[0, 0, 5, c].item() * 255) for c in (5, 32, 60)] == [0, 128, 255]  # v / 257
    m = inputs.load_png(tmp_path / "grey16.png", size=64)
    assert [round(m[0, 0, 5, c].item() * 255) for c in (5, 32, 60)] == [0, 128, 255]
    colour = np.zeros((64, 64, 3), dtype=np.uint16)
    colour[..., 0], colour[..., 1], colour[..., 2] = 65535, 32768, 1000
    (tmp_path / "rgb16.png").write_bytes(_png16(colour))
    x = inputs.load_rgb({"source": str(tmp_path / "rgb16.png")})
    assert [round(v * 255) for v in x[0, :, 30, 30].tolist()] == [255, 128, 3]  # the high byte of each sample
    assert _notes(notes, "16-bit grey image (max 65535 of 65535) scaled to 8 bits") == 2
    assert _notes(notes, "16-bit RGB samples reduced to 8 bits per channel") == 1


def test_tiny_and_long_inputs_are_refused_unless_cropped(tmp_path, notes):
    Image.new("RGB", (1, 1), (90, 90, 90)).save(tmp_path / "dot.png")
    Image.new("RGB", (3000, 4), (90, 90, 90)).save(tmp_path / "strip.png")
    Image.new("RGB", (400, 50), (90, 90, 90)).save(tmp_path / "banner.png")
    for name, words in [("dot", "is 1x1: under 16 px a side"), ("strip", "is 3000x4: under 16 px a side"), ("banner", r"is 400x50, more than 4:1: the centre square would keep only 12%")]:
        with pytest.raises(ValueError, match=words + r".*Give it a crop: \[y0, y1, x0, x1\].*part_a.deepfloyd.images"):
            inputs.load_rgb({"source": str(tmp_path / f"{name}.png")})
        with pytest.raises(ValueError, match=words + ".*part_a.mnist.images takes no crop"):
            inputs.load_png(tmp_path / f"{name}.png")
    x = inputs.load_rgb({"source": str(tmp_path / "banner.png"), "crop": [0, 50, 100, 150]})  # a crop makes it fine
    assert torch.allclose(x, torch.full_like(x, 90 / 255))
    with pytest.raises(ValueError, match=r"crop \[0, 4, 0, 4\]\) is 4x4: under 16 px a side.*Widen its crop"):
        inputs.load_rgb({"source": str(tmp_path / "strip.png"), "crop": [0, 4, 0, 4]})
    inputs.load_rgb({"source": str(tmp_path / "banner.png"), "crop": [0, 50, 100, 300]})
    assert _notes(notes, "crop [0, 50, 100, 300] is 200x50, not square: stretched to 64x64") == 1


def test_every_conversion_leaves_one_line(tmp_path, notes):
    # greyscale to RGB
    Image.new("L", (64, 64), 100).save(tmp_path / "grey.png")
    assert torch.allclose(inputs.load_rgb({"source": str(tmp_path / "grey.png")}), torch.full((1, 3, 64, 64), 100 / 255))
    # grey + alpha: composited on white
    la = Image.new("LA", (64, 64), (0, 0))
    la.paste((0, 255), (0, 0, 32, 64))
    la.save(tmp_path / "la.png")
    x = inputs.load_rgb({"source": str(tmp_path / "la.png")})
    assert x[0, :, 5, 5].tolist() == [0, 0, 0] and x[0, :, 5, 60].tolist() == [1, 1, 1]
    # EXIF orientation 6 (shown turned 90 degrees clockwise): the left half, blue, ends up on top
    im = Image.new("RGB", (80, 64), (255, 0, 0))
    im.paste((0, 0, 255), (0, 0, 40, 64))
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "turned.png", exif=exif)
    x = inputs.load_rgb({"source": str(tmp_path / "turned.png")})
    assert x[0, :, 5, 32].tolist() == [0, 0, 1] and x[0, :, 58, 32].tolist() == [1, 0, 0]
    # an animation: its first frame
    frames = [Image.new("RGB", (64, 64), c) for c in [(255, 0, 0), (0, 255, 0)]]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert inputs.load_rgb({"source": str(tmp_path / "anim.gif")})[0, :, 30, 30].tolist() == [1, 0, 0]
    # 1-bit and a light background for the MNIST model: black strokes on white become a white digit on black
    ink = np.ones((28, 28), dtype=bool)
    ink[4:24, 12:16] = False
    Image.fromarray(ink).save(tmp_path / "ink.png")
    x = inputs.load_png(tmp_path / "ink.png")
    assert x[0, 0, 10, 13] == 1 and x[0, 0, 10, 3] == 0
    # a long photo without a crop: its central square
    Image.new("RGB", (96, 64), (9, 9, 9)).save(tmp_path / "wide.png")
    inputs.load_rgb({"source": str(tmp_path / "wide.png")})
    for words in ["grey.png: grey image repeated on the three RGB channels", "la.png: LA image with transparency composited on white",
                  "turned.png: turned upright by its EXIF orientation 6 (now 64x80)", "anim.gif: 2 frames (an animation or a multi-page file); the first is used",
                  "ink.png: 1-bit image read as black (0) and white (255)", "ink.png: light background (mean 0.90) inverted to a white digit on black",
                  "wide.png: a 96x64 image, its central 64x64 square used"]:
        assert _notes(notes, words) == 1, words


def test_pixel_limit_refuses_bombs_without_pillows_warning(tmp_path):
    (tmp_path / "big.png").write_bytes(_png_header(10_000, 9_000))  # 90 M pixels: Pillow would only warn
    (tmp_path / "bomb.png").write_bytes(_png_header(20_000, 20_000))  # 400 M: Pillow refuses
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would fail the test
        with pytest.raises(ValueError, match="is 10000x9000 = 90 megapixels, more than the 80 megapixels Part A reads.*downscale it"):
            inputs.load_rgb({"source": str(tmp_path / "big.png")})
        with pytest.raises(ValueError, match="far more than the 80 megapixels Part A reads"):
            inputs.load_png(tmp_path / "bomb.png")
        with pytest.raises(ValueError, match="90 megapixels"):
            inputs.load_mask(tmp_path / "big.png", 64)


def test_shipped_input_files_pass_the_rules(notes):
    """Every image file the configs name loads under the same rules (and masks, were there any)."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    for spec in cfg["part_a"]["deepfloyd"]["images"].values():
        assert inputs.load_rgb(spec, repo).shape == (1, 3, 64, 64)
    for spec in cfg["part_a"]["mnist"]["images"].values():
        if "file" in spec:
            assert inputs.load_png(repo / spec["file"]).shape == (1, 1, 28, 28)
    for model, size in (("deepfloyd", 64), ("mnist", 28)):
        for entry in cfg["part_a"][model]["inpaint"]:
            mask = inputs.rect_mask(entry["rect"], size) if "rect" in entry else inputs.load_mask(repo / entry["mask"], size)
            assert 0 < mask.mean() < 1
