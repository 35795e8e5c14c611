"""Part A's input files: images and inpainting masks, read and validated by one set of rules.

Every image and mask file Part A reads goes through `open_image` (decoding, animation frames,
EXIF orientation, 16-bit samples, size limits) and `standard_mode` (8-bit RGB or grey from any
mode). `load_png` reads the MNIST model's grey digits, `load_rgb` DeepFloyd's colour photos (a
repo file, a scikit-image photo, or a URL checked against its sha256), `load_mask` and
`rect_mask` the inpainting holes. Each conversion leaves one line in the job's log; everything
else is refused with what to do.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)


HUGE_SIDE = 4096  # a side past this is noted as downscaled
MAX_PIXELS = 80_000_000  # refused past this (below Pillow's DecompressionBombWarning at 89.5 M, which never reaches the log)
MIN_SIDE = 16  # refused under this many pixels a side (of the crop, where one is given)
MAX_ASPECT = 4.0  # refused past this ratio without a crop: the centre square would keep too little
MAX_MID_GREY = 0.25  # a mask with more of its pixels in the middle half of its range is refused, not thresholded


def _bits(im) -> str:
    """The raw sample layout of a just-opened (not yet loaded) image, e.g. 'I;16B', 'RGB;16B', 'I;32S'."""
    args = im.tile[0][3] if im.tile else None
    if im.format == "PPM" and isinstance(args, tuple) and len(args) > 1 and isinstance(args[1], int):
        return "16" if args[1] > 255 else ""  # Pillow rescales PGM / PPM by their maxval
    raw = args if isinstance(args, str) else (args[0] if isinstance(args, tuple) and args and isinstance(args[0], str) else "")
    return raw


def open_image(source, where: str, what: str = "Part A input image"):
    """A decoded PIL image from a path or a file object: the first frame of an animation, turned
    upright by its EXIF orientation, 16-bit samples noted, each with a line in the log; refused
    when unreadable or past MAX_PIXELS."""
    import warnings

    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit below
            opened = Image.open(source)
        with opened as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ValueError(f"{what} {where} is {w}x{h} = {w * h / 1e6:.0f} megapixels, more than the {MAX_PIXELS / 1e6:.0f} megapixels "
                                 f"Part A reads (a decompression bomb, or a scan far larger than needed): downscale it to at most "
                                 f"{HUGE_SIDE} px a side and save it again.")
            raw = _bits(im)
            frames = getattr(im, "n_frames", 1)
            im.load()
            if frames > 1:
                log.info("%s: %d frames (an animation or a multi-page file); the first is used", where, frames)
            orientation = im.getexif().get(0x0112, 1)
            out = ImageOps.exif_transpose(im)  # a copy, upright
            if orientation not in (1, None):
                log.info("%s: turned upright by its EXIF orientation %d (now %dx%d)", where, orientation, *out.size)
    except Image.DecompressionBombError as err:
        raise ValueError(f"{what} {where} cannot be read ({err}); it is far more than the {MAX_PIXELS / 1e6:.0f} megapixels "
                         f"Part A reads: downscale it to at most {HUGE_SIDE} px a side and save it again.") from err
    except (UnidentifiedImageError, OSError) as err:
        if hasattr(source, "getvalue"):
            head = source.getvalue()[:4]
        else:
            with open(source, "rb") as f:
                head = f.read(4)
        if head in (b"II*\x00", b"MM\x00*"):
            raise ValueError(f"{what} {where} is a TIFF that Pillow cannot decode ({err}): truncated, or with float colour or 16/64-bit "
                             "float samples, which Part A does not read. Save it as an 8- or 16-bit PNG, or as one-channel 32-bit float "
                             "with values in [0, 1].") from err
        raise ValueError(f"{what} {where} cannot be read ({err}); it is corrupt, not an image or too large. Replace the file.") from err
    if out.mode == "I" and (raw.startswith("I;16") and not raw.endswith("S") or raw == "16"):
        out = Image.fromarray(np.asarray(out).astype(np.uint16))  # 16-bit unsigned samples that Pillow widened to 32 bits
    elif "16" in raw and not out.mode.startswith("I"):
        log.info("%s: 16-bit %s samples reduced to 8 bits per channel", where, out.mode)
    return out


def standard_mode(im, where: str, grey: bool = False, what: str = "Part A input image"):
    """8-bit RGB (or grey) from any mode PIL reads, with a line in the log for each conversion:
    16-bit grey is scaled (v / 257, not clipped), float grey is read on the [0, 1] scale,
    transparency is composited on white, CMYK, palette and the rest go through PIL's conversion,
    grey becomes three equal channels and colour becomes grey by PIL's luma. Refused: float
    values outside [0, 1] (or not finite) and 32-bit or signed integers (no agreed white level)."""
    import numpy as np
    from PIL import Image

    mode = im.mode
    if mode.startswith("I;16"):
        arr = np.asarray(im, dtype=np.float64)
        log.info("%s: 16-bit grey image (max %d of 65535) scaled to 8 bits", where, arr.max())
        im = Image.fromarray(np.clip(arr / 65535.0 * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        finite = np.isfinite(arr).all()
        lo, hi = (float(arr.min()), float(arr.max())) if finite else (float("nan"),) * 2
        if not (lo >= -1e-3 and hi <= 1 + 1e-3):
            values = f"values in [{lo:g}, {hi:g}]" if finite else "NaN or infinite values"
            raise ValueError(f"{what} {where} is a float image with {values}; Part A reads float images on the "
                             "[0, 1] scale (0 black, 1 white). Rescale it to [0, 1], or save it as an 8-bit PNG.")
        log.info("%s: 32-bit float image (values %g..%g) read on the [0, 1] scale", where, lo, hi)
        im = Image.fromarray(np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif mode == "I":
        arr = np.asarray(im)
        raise ValueError(f"{what} {where} holds 32-bit or signed integers (values {arr.min()}..{arr.max()}), which have no agreed "
                         "white level: save it as an 8- or 16-bit PNG, or as 32-bit float with values in [0, 1].")
    elif "A" in mode or "a" in mode or (mode == "P" and "transparency" in im.info):
        log.info("%s: %s image with transparency composited on white", where, mode)
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("L" if mode in ("LA", "La") else "RGB")
    elif mode == "1":
        log.info("%s: 1-bit image read as black (0) and white (255)", where)
        im = im.convert("L")
    elif mode not in ("RGB", "L"):
        log.info("%s: converting %s image to RGB", where, mode)
        im = im.convert("RGB")
    if max(im.size) > HUGE_SIDE:
        log.info("%s: a %dx%d image, downscaled", where, *im.size)
    if grey and im.mode != "L":
        log.info("%s: colour converted to grey (luma, ITU-R 601)", where)
    elif not grey and im.mode != "RGB":
        log.info("%s: grey image repeated on the three RGB channels", where)
    return im.convert("L" if grey else "RGB")


def check_shape(width: int, height: int, where: str, fix: str, what: str = "Part A input image") -> None:
    """Refuse an image (or the region kept of it) under MIN_SIDE a side or past MAX_ASPECT:1; `fix` says what to do."""
    short, long = min(width, height), max(width, height)
    if short < MIN_SIDE:
        raise ValueError(f"{what} {where} is {width}x{height}: under {MIN_SIDE} px a side it would only be blown up into a blur. {fix}")
    if long > MAX_ASPECT * short:
        raise ValueError(f"{what} {where} is {width}x{height}, more than {MAX_ASPECT:g}:1: the centre square would keep only "
                         f"{short / long:.0%} of it. {fix}")


def load_png(path: str | Path, size: int = 28) -> torch.Tensor:
    """A grey image file as [1, 1, size, size] in [0, 1], white digit on black (inverted, with a
    note, if the background is light); read by the rules of `open_image` and `standard_mode`, and
    refused under MIN_SIDE a side or past MAX_ASPECT:1 (these inputs take no crop: crop the file)."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Part A input image {path} does not exist. Fix its path in part_a of the config.")
    im = standard_mode(open_image(path, str(path)), str(path), grey=True)
    w, h = im.size
    check_shape(w, h, str(path), f"Use an image of at least {MIN_SIDE} px a side, cropped around the digit to roughly square (part_a.mnist.images takes no crop).")
    if im.size != (size, size):
        log.info("%s: resizing %dx%d to %dx%d%s", path, w, h, size, size, "" if w == h else " (stretched: not square)")
        im = im.resize((size, size), Image.BILINEAR)
    x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).float().div(255).reshape(1, 1, size, size)
    if x.mean() > 0.5:  # dark strokes on paper: make it MNIST-like
        log.info("%s: light background (mean %.2f) inverted to a white digit on black, as in MNIST", path, x.mean())
        x = 1.0 - x
    return x


def rect_mask(rect: list[int], size: int = 28) -> torch.Tensor:
    """[1, 1, size, size] with 1 inside rows y0:y1, cols x0:x1 (the hole to fill); a rectangle
    outside the image or covering all of it is refused."""
    y0, y1, x0, x1 = rect
    if not (0 <= y0 < y1 <= size and 0 <= x0 < x1 <= size):
        raise ValueError(f"mask rectangle {rect} (y0, y1, x0, x1) must lie inside the {size}x{size} image with y0 < y1 and x0 < x1")
    if (y1 - y0, x1 - x0) == (size, size):
        raise ValueError(f"mask rectangle {rect} covers the whole {size}x{size} image, so nothing of the original is kept. Make the hole smaller.")
    mask = torch.zeros(1, 1, size, size)
    mask[..., y0:y1, x0:x1] = 1.0
    return mask


def test_digit(images: torch.Tensor, index: int) -> torch.Tensor:
    """MNIST test image `index` as [1, 1, 28, 28] in [0, 1]."""
    return images[index : index + 1].float().div(255).unsqueeze(1)


def _read_source(spec: dict, base_dir: Path):
    """A PIL image from a repo file, a scikit-image photo, or a URL checked against its sha256."""
    import hashlib
    import io
    import urllib.request

    from PIL import Image

    source = spec["source"]
    if source.startswith("skimage:"):
        import skimage.data

        name = source.split(":", 1)[1]
        loader = getattr(skimage.data, name, None)
        if loader is None or not callable(loader):
            raise ValueError(f"Part A input {source!r}: scikit-image has no photo called {name!r} (try astronaut, chelsea, coffee, rocket).")
        return Image.fromarray(loader())
    if source.startswith(("http://", "https://", "file:")):
        try:
            with urllib.request.urlopen(source, timeout=60) as response:
                payload = response.read()
        except OSError as err:
            raise ValueError(f"Part A input {source} could not be downloaded ({err}). Check the URL or use a local file.") from err
        digest = hashlib.sha256(payload).hexdigest()
        if digest != spec.get("sha256"):
            raise ValueError(f"Part A input {source} has sha256 {digest}, not the configured {spec.get('sha256')}: the file changed or the download is incomplete.")
        return open_image(io.BytesIO(payload), source)
    path = Path(source) if Path(source).is_absolute() else base_dir / source
    if not path.is_file():
        raise FileNotFoundError(f"Part A input image {path} does not exist. Fix its source in part_a.deepfloyd.images of the config.")
    return open_image(path, source)


def load_rgb(spec: dict, base_dir: str | Path = ".", size: int = 64) -> torch.Tensor:
    """A configured colour input as [1, 3, size, size] in [0, 1]: crop (default the central square,
    noted), then resize; read by the rules of `open_image` and `standard_mode`. Refused: a crop
    under MIN_SIDE a side, and without a crop an image under MIN_SIDE or past MAX_ASPECT:1."""
    from PIL import Image

    source = spec["source"]
    im = standard_mode(_read_source(spec, Path(base_dir)), source)
    w, h = im.size
    if "crop" in spec:
        y0, y1, x0, x1 = spec["crop"]
        if y1 > h or x1 > w:
            raise ValueError(f"Part A input {source}: crop {spec['crop']} (rows y0:y1, columns x0:x1) goes past the {w}x{h} image.")
        check_shape(x1 - x0, y1 - y0, f"{source} (crop {spec['crop']})", "Widen its crop in part_a.deepfloyd.images of the config.")
        if x1 - x0 != y1 - y0:
            log.info("%s: crop %s is %dx%d, not square: stretched to %dx%d", source, spec["crop"], x1 - x0, y1 - y0, size, size)
    else:
        check_shape(w, h, source, "Give it a crop: [y0, y1, x0, x1] (rows y0:y1, columns x0:x1 of the original) in "
                                  "part_a.deepfloyd.images of the config, or use a larger image.")
        side = min(w, h)
        y0, x0 = (h - side) // 2, (w - side) // 2
        y1, x1 = y0 + side, x0 + side
        if w != h:
            log.info("%s: a %dx%d image, its central %dx%d square used (no crop in the config)", source, w, h, side, side)
    im = im.crop((x0, y0, x1, y1)).resize((size, size), Image.LANCZOS)
    x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).float().div(255)
    return x.reshape(size, size, 3).permute(2, 0, 1).unsqueeze(0).contiguous()


def mask_hole(values, where: str):
    """The hole (True = fill) of a mask's pixel values, said in the log: any two-valued image is a
    mask, its brighter value the hole (0/1, 0/255, boolean, 16-bit, float); more levels are
    thresholded midway unless over MAX_MID_GREY of the pixels are mid-grey; an empty mask and one
    that covers the whole image are refused."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    size = "x".join(map(str, v.shape[::-1]))
    if not np.isfinite(v).all():
        raise ValueError(f"inpainting mask {where} has NaN or infinite values. Save it as black (keep) and white (the hole to fill).")
    levels = np.unique(v)
    lo, hi = levels[0], levels[-1]
    if len(levels) == 1:
        if lo == 0:
            raise ValueError(f"inpainting mask {where} has no white pixel: nothing to fill.")
        raise ValueError(f"inpainting mask {where} is {lo:g} everywhere, so it covers the whole {size} image and nothing of the original "
                         "is kept (white / 1 marks the hole to fill; is the mask inverted, or drawn on a transparent background?). Make the hole smaller.")
    if len(levels) == 2:
        hole = v == hi
        log.info("%s: a two-valued mask, %g = keep and %g = the hole: %d hole pixels, %.1f %% of the image", where, lo, hi, hole.sum(), 100 * hole.mean())
        return hole
    quarter = (hi - lo) / 4
    mid = ((v > lo + quarter) & (v < hi - quarter)).mean()
    if mid > MAX_MID_GREY:
        raise ValueError(f"inpainting mask {where} is not a black-and-white mask: {mid:.0%} of its pixels are mid-grey ({len(levels)} levels "
                         f"from {lo:g} to {hi:g}; a gradient or a photo?). Save it with black (keep) and white (the hole to fill) only.")
    hole = v > (lo + hi) / 2
    log.info("%s: %d grey levels (%g..%g), not a two-valued mask: thresholded at %g, hole = %d pixels, %.1f %% of the image "
             "(%.1f %% of its pixels were neither %g nor %g)", where, len(levels), lo, hi, (lo + hi) / 2, hole.sum(), 100 * hole.mean(),
             100 * ((v != lo) & (v != hi)).mean(), lo, hi)
    return hole


def load_mask(path: Path, size: int) -> torch.Tensor:
    """A mask file (white / the brighter value = the hole) as [1, 1, size, size] of 0 and 1; it must
    already be size x size; read by `open_image` and `mask_hole` (empty and whole-image masks refused)."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"inpainting mask {path} does not exist. Fix part_a.deepfloyd.inpaint in the config.")
    im = open_image(path, str(path), what="inpainting mask")
    if im.size != (size, size):
        raise ValueError(f"inpainting mask {path} is {im.size[0]}x{im.size[1]}, but the images are {size}x{size}: resize the mask (white = the hole).")
    if im.mode in ("1", "L", "I", "F") or im.mode.startswith("I;16"):
        values = np.asarray(im)  # the file's own values: a 0/1 or 16-bit or float mask keeps its two levels
    else:
        values = np.asarray(standard_mode(im, str(path), grey=True, what="inpainting mask"))
    hole = mask_hole(values, str(path))
    return torch.from_numpy(hole.astype(np.float32)).reshape(1, 1, size, size)
