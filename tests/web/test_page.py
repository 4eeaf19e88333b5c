"""The web page (web/) in a real browser: Debian's headless Chromium, driven by
chromium-driver through Debian's python3-selenium, against a real
`facerec serve` with an API key.

Steps, each saved as a screenshot under build/web_screenshots/ (a test
artefact; look at them):
  1. the key is entered once; two celeb5 people (and Lin-Manuel Miranda, from
     the reference still ../shared offers for him) are enrolled through the
     page: by its file picker, and by a drop event carrying the files;
  2. a celeb5 val photo is identified: the names drawn are read from the DOM,
     and the candidate list shows on hover;
  3. the live view runs on Chromium's fake camera, fed a y4m made here with
     ffmpeg from the Hamilton clip: Lin-Manuel Miranda must be named within
     10 s of pressing Start;
  4. a person is renamed and another removed through the page.

Run: /usr/bin/python3 -m pytest -q tests/web (scripts/test.sh does). Skips
loudly without chromium, chromedriver, selenium, ffmpeg, build/facerec or
../shared.
"""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from servesupport import BIN, BUILD, CELEB, SHARED, Serve, loud_skip  # noqa: E402

VIDEO = SHARED / "data" / "video"
SHOTS = BUILD / "web_screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _skip(msg):
    loud_skip("the web page browser test", msg)


try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    _skip("python3-selenium is ABSENT")
for path, what in ((CHROMIUM, "chromium"), (DRIVER, "chromedriver (chromium-driver)"), (BIN, "build/facerec")):
    if not Path(path).exists():
        _skip(f"{what} ({path}) is ABSENT")
if not shutil.which("ffmpeg"):
    _skip("ffmpeg is ABSENT")
if not CELEB.is_dir() or not (VIDEO / "short_hamilton_clip.mp4").exists():
    _skip(f"{CELEB} or {VIDEO} is ABSENT")

KEY = "web-test-key-0123456789"
LIVE_DEADLINE_S = 10.0


@pytest.fixture(scope="module")
def fake_camera(tmp_path_factory):
    """4 s of the Hamilton clip at 480x270, 15 fps, as the y4m Chromium's fake
    camera reads (and loops). From 3.5 s to 7.5 s Lin-Manuel Miranda faces the
    camera: `facerec identify` names him on every frame of it at 4 fps, while
    1.5-3.5 s shows him turned or blurred (abstentions)."""
    y4m = tmp_path_factory.mktemp("camera") / "hamilton.y4m"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-ss", "3.5", "-t", "4", "-i",
                    str(VIDEO / "short_hamilton_clip.mp4"),
                    "-vf", "scale=480:270,fps=15", "-pix_fmt", "yuv420p", str(y4m)], check=True, timeout=120)
    return y4m


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve")
    keys = d / "keys.json"
    keys.write_text(json.dumps({"keys": [{"sha256": hashlib.sha256(KEY.encode()).hexdigest(), "role": "enroll",
                                          "name": "web test"}]}))
    s = Serve(d / "g.db", "--keys", keys, "--workers", "2", "--threads", "1")
    yield s.base
    s.stop()


@pytest.fixture(scope="module")
def browser(fake_camera):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
              "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-video-capture={fake_camera}", "--no-first-run"):
        opts.add_argument(a)
    if os.geteuid() == 0:
        opts.add_argument("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def shot(driver, name):
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def wait(driver, cond, timeout=120, poll=0.2):
    return WebDriverWait(driver, timeout, poll_frequency=poll).until(lambda d: cond(d))


def people_rows(driver):
    # Read in one script: the page re-renders the table after each change.
    return driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#people-table tbody tr')].map(r => "
        "[r.querySelector('.person-name').textContent, Number(r.querySelector('.person-templates').textContent)]))")


DROP_JS = """
const [zoneId, files] = arguments;
const dt = new DataTransfer();
for (const [name, b64] of files) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  dt.items.add(new File([bytes], name, {type: "image/jpeg"}));
}
const zone = document.getElementById(zoneId);
zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
"""


def enrol(driver, name, photos, drop=False):
    """Through the file picker, or (drop=True) by dropping the files on the
    drop zone: a real drop event carrying File objects."""
    field = driver.find_element(By.ID, "new-name")
    field.clear()
    field.send_keys(name)
    if drop:
        driver.execute_script(DROP_JS, "drop-people",
                              [[p.name, base64.b64encode(p.read_bytes()).decode()] for p in photos])
    else:
        driver.find_element(By.ID, "people-files").send_keys("\n".join(str(p) for p in photos))
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#pending-files li")) == len(photos), timeout=10)
    driver.find_element(By.ID, "enrol").click()
    wait(driver, lambda d: people_rows(d).get(name) == len(photos))


def test_page_people_identify_live(server, browser):
    d = browser
    d.get(server + "/")
    assert d.title == "facerec"
    # Without the key the people list is refused (401), and the page says so.
    wait(d, lambda d: "key" in d.find_element(By.ID, "key-state").text)
    d.find_element(By.ID, "key-input").send_keys(KEY)
    d.find_element(By.ID, "key-save").click()
    wait(d, lambda d: d.find_element(By.ID, "key-state").text == "key set for this tab")
    assert d.execute_script("return sessionStorage.getItem('facerec.apiKey')") == KEY

    # 1. People, through the page.
    train = CELEB / "train"
    enrol(d, "Elton John", sorted((train / "Elton John").iterdir())[:3])
    enrol(d, "Madonna", sorted((train / "Madonna").iterdir())[:3], drop=True)
    enrol(d, "Lin-Manuel", [VIDEO / "ref_lin-manuel-miranda.png"])
    assert people_rows(d) == {"Elton John": 3, "Madonna": 3, "Lin-Manuel": 1}
    shot(d, "1_people_enrolled")

    # Rename through the page (the live test needs his full name).
    row = d.find_element(By.CSS_SELECTOR, '#people-table tr[data-name="Lin-Manuel"]')
    row.find_element(By.CSS_SELECTOR, "button.rename").click()
    box = row.find_element(By.CSS_SELECTOR, "input.rename")
    box.clear()
    box.send_keys("Lin-Manuel Miranda")
    row.find_element(By.CSS_SELECTOR, "button.rename-save").click()
    wait(d, lambda d: "Lin-Manuel Miranda" in people_rows(d))
    assert "Lin-Manuel" not in people_rows(d)

    # 2. Identify a val photo; read the names drawn from the DOM.
    d.find_element(By.ID, "tab-identify").click()
    d.find_element(By.ID, "identify-file").send_keys(str(CELEB / "val" / "elton_john" / "1.jpg"))
    wait(d, lambda d: d.find_element(By.ID, "identify-summary").get_attribute("data-done") == "1")
    boxes = d.find_elements(By.CSS_SELECTOR, "#identify-overlay .face-box")
    labels = [b.find_element(By.CLASS_NAME, "face-label").text for b in boxes]
    assert any(l.startswith("Elton John ") for l in labels), labels
    elton = next(b for b in boxes if b.get_attribute("data-identity") == "Elton John")
    assert elton.size["width"] > 10 and elton.size["height"] > 10  # drawn where the face is, not collapsed
    ActionChains(d).move_to_element(elton).perform()
    cands = elton.find_element(By.CLASS_NAME, "candidates")
    wait(d, lambda d: cands.is_displayed(), timeout=5)
    assert "Elton John" in cands.text and "Madonna" in cands.text, cands.text
    shot(d, "2_identify_hover_candidates")

    # A photo of people nobody enrolled: boxes drawn as unknown.
    d.find_element(By.ID, "identify-file").send_keys(str(SHARED / "data" / "crowd" / "obama_and_biden.jpg"))
    wait(d, lambda d: "obama_and_biden" in d.find_element(By.ID, "identify-summary").text and
         d.find_element(By.ID, "identify-summary").get_attribute("data-done") == "1")
    unknown = d.find_elements(By.CSS_SELECTOR, "#identify-overlay .face-box.unknown")
    assert len(unknown) >= 2 and all(u.text.startswith("unknown") for u in unknown)
    shot(d, "3_identify_unknowns")

    # 3. Live: the fake camera plays the Hamilton clip.
    d.find_element(By.ID, "tab-live").click()
    t0 = time.monotonic()
    d.find_element(By.ID, "live-start").click()
    # The overlay is redrawn for every frame: read the label in one script.
    label = wait(d, lambda d: d.execute_script(
        "const b = document.querySelector('#live-overlay .face-box[data-identity=\"Lin-Manuel Miranda\"]');"
        "return b && b.querySelector('.face-label').textContent;"), timeout=LIVE_DEADLINE_S, poll=0.1)
    took = time.monotonic() - t0
    shot(d, "4_live_named")
    print(f"\nlive: Lin-Manuel Miranda named {took:.1f} s after Start ({d.find_element(By.ID, 'live-stats').text})")
    assert label.startswith("Lin-Manuel Miranda "), label
    d.find_element(By.ID, "live-stop").click()

    # 4. Remove through the page (two clicks: the first arms the button).
    loaded = lambda d: int(d.find_element(By.ID, "people-table").get_attribute("data-loaded") or 0)  # noqa: E731
    before = loaded(d)
    d.find_element(By.ID, "tab-people").click()
    wait(d, lambda d: loaded(d) > before)  # the tab's own listing has been drawn: no redraw under us
    assert "Madonna" in people_rows(d)
    remove = d.find_element(By.CSS_SELECTOR, '#people-table tr[data-name="Madonna"] button.remove')
    remove.click()
    assert "Madonna" in people_rows(d)  # armed, not yet removed
    remove.click()
    wait(d, lambda d: "Madonna" not in people_rows(d))
    assert people_rows(d) == {"Elton John": 3, "Lin-Manuel Miranda": 1}
    shot(d, "5_people_after_rename_and_remove")


def test_page_is_public_and_api_is_not(server):
    """The static files need no key (the page asks for it); the API still does."""
    import requests
    r = requests.get(server + "/", timeout=30)
    assert r.status_code == 200 and "<title>facerec</title>" in r.text
    assert "default-src 'self'" in r.headers.get("Content-Security-Policy", "")
    for f, ctype in (("app.js", "javascript"), ("style.css", "text/css")):
        r = requests.get(f"{server}/{f}", timeout=30)
        assert r.status_code == 200 and ctype in r.headers["Content-Type"]
    assert requests.get(server + "/v1/people", timeout=30).status_code == 401
    assert requests.get(server + "/../CMakeLists.txt", timeout=30).status_code in (400, 404)
