"""Drive `moa-depthclip app` in a real browser: upload an image, wait, check the depth and downloads.

    python scripts/browser_check.py                       # random-weights model, screenshot docs/images/app.png
    python scripts/browser_check.py --model runs/nyu --image kitchen.jpg --screenshot app.png

Needs Gradio (`pip install 'moa-depthclip[app]'`), selenium (`pip install selenium`) and Debian's
headless Chromium with its driver (`apt-get install chromium chromium-driver`; a browser that
downloads its own binary is not used). Starts the app on 127.0.0.1 at a free port in this process,
opens it in headless Chromium, uploads the image, clicks "Estimate depth", waits for the result,
checks that the page shows the depth panel and that the 16-bit PNG (millimetres), .npy and .ply
downloads are served and decode, and saves a screenshot. Exit status 0 when every check passes.
"""

from __future__ import annotations

import argparse
import io
import shutil
import socket
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_CANDIDATES = ("chromedriver",)


@dataclass
class BrowserCheck:
    """What the browser saw."""

    message: str = ""
    panel_count: int = 0
    downloads: dict[str, bytes] = field(default_factory=dict)
    screenshot: Path | None = None


def missing_requirements() -> str | None:
    """Why the browser check cannot run here, or None when it can."""
    import importlib.util

    for module, install in (
        ("gradio", "pip install 'moa-depthclip[app]'"),
        ("selenium", "pip install selenium"),
    ):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed ({install})"
    if browser_binary() is None:
        return "no Chromium binary (apt-get install chromium)"
    if shutil.which(DRIVER_CANDIDATES[0]) is None:
        return "no chromedriver (apt-get install chromium-driver)"
    return None


def browser_binary() -> str | None:
    return next((path for name in CHROMIUM_CANDIDATES if (path := shutil.which(name))), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_image(path: Path) -> Path:
    """A synthetic room-like picture (floor, walls, a box) when no image is given."""
    height, width = 240, 320
    rows = np.linspace(0.0, 1.0, height)[:, None, None]
    picture = np.concatenate([180 - 80 * rows, 170 - 60 * rows, 150 - 40 * rows], axis=2) * np.ones(
        (1, width, 1)
    )
    picture[150:, :, :] = [120, 90, 60]  # floor
    picture[110:190, 120:220, :] = [40, 110, 170]  # box
    Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(path)
    return path


def run_check(
    model_specs: list[str], image: Path, screenshot: Path | None, timeout: float = 240.0
) -> BrowserCheck:
    """Start the app, drive it with headless Chromium, return what was seen (raises on failure)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from moa_depthclip.app.ui import launch

    port = free_port()
    page = launch(model_specs, host="127.0.0.1", port=port, block=False)
    options = webdriver.ChromeOptions()
    options.binary_location = browser_binary() or ""
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1700"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    check = BrowserCheck()
    try:
        url = f"http://127.0.0.1:{port}/"
        driver.get(url)
        wait = WebDriverWait(driver, timeout)
        upload = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#uploads input[type=file]")))
        upload.send_keys(str(image.resolve()))
        wait.until(lambda d: image.stem in d.find_element(By.ID, "uploads").text)  # shown as "room" ".png"
        driver.find_element(By.CSS_SELECTOR, "#run").click()
        wait.until(lambda d: "Processed" in d.find_element(By.ID, "message").text)
        check.message = driver.find_element(By.ID, "message").text
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#panels img"))
        check.panel_count = len(driver.find_elements(By.CSS_SELECTOR, "#panels img"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#downloads a[href]")) >= 3)
        for link in driver.find_elements(By.CSS_SELECTOR, "#downloads a[href]"):
            href = link.get_attribute("href") or ""
            name = href.split("/")[-1].split("?")[0]
            with urllib.request.urlopen(href, timeout=30) as response:  # noqa: S310 - our own localhost page
                check.downloads[name] = response.read()
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            time.sleep(1.0)  # let the slider's images finish painting
            driver.save_screenshot(str(screenshot))
            check.screenshot = screenshot
    finally:
        driver.quit()
        page.close()
    return check


def verify(check: BrowserCheck) -> list[str]:
    """The problems with what the browser saw (empty: all good)."""
    problems = []
    if "Processed 1 of 1" not in check.message:
        problems.append(f"the page did not report a processed image: {check.message!r}")
    if check.panel_count < 1:
        problems.append("no depth panel shown")
    pngs = [data for name, data in check.downloads.items() if name.endswith("_depth.png")]
    npys = [data for name, data in check.downloads.items() if name.endswith("_depth.npy")]
    plys = [data for name, data in check.downloads.items() if name.endswith(".ply")]
    if not (pngs and npys and plys):
        problems.append(f"downloads missing: got {sorted(check.downloads)}")
        return problems
    millimetres = np.asarray(Image.open(io.BytesIO(pngs[0])))
    metres = np.load(io.BytesIO(npys[0]))
    if millimetres.dtype != np.uint16 or millimetres.shape != metres.shape:
        problems.append(f"16-bit PNG is {millimetres.dtype} {millimetres.shape}, .npy {metres.shape}")
    elif not np.array_equal(millimetres, np.round(np.clip(metres, 0, 65.535) * 1000).astype(np.uint16)):
        problems.append("16-bit PNG (mm) does not match the .npy (m)")
    if not plys[0].startswith(b"ply\n"):
        problems.append("the .ply download is not a PLY file")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", action="append", default=[], help="model spec(s) to offer (default: random)"
    )
    parser.add_argument("--image", type=Path, help="image to upload (default: a synthetic room)")
    parser.add_argument("--screenshot", type=Path, default=Path("docs/images/app.png"))
    args = parser.parse_args(argv)
    reason = missing_requirements()
    if reason:
        print(f"browser check cannot run: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        image = args.image or demo_image(Path(tmp) / "room.png")
        check = run_check(args.model or ["random"], image, args.screenshot)
    problems = verify(check)
    print(f"page message: {check.message.splitlines()[0] if check.message else '(none)'}")
    print(f"panels: {check.panel_count}; downloads: {', '.join(sorted(check.downloads))}")
    print(f"screenshot: {check.screenshot}")
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
