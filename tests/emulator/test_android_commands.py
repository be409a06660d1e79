"""Android (UiAutomator2) capability/command construction, emulator lifecycle argv lists, device-
state predicates and page-source parsing.

No emulator or system image can run here, so:
* argv lists are checked exactly through ``DryRunRunner`` (the product's --dry-run runner);
* the real ``SubprocessRunner`` is exercised against FAKE ``adb``/``emulator`` executables
  written by the tests (Python scripts that record their argv and answer like adb) — clearly a
  stand-in for the SDK tools, used only because the SDK can't run here;
* the Android env's step/reset glue runs against ``FakeUiAutomator2Driver``, a scripted stand-in
  for a UiAutomator2 session (same reason), that records the driver calls the env makes.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from emulator.android import (
    AdbDeviceState,
    AndroidSdk,
    DryRunRunner,
    Emulator,
    EmulatorConfig,
    EmulatorError,
    MaintenanceCommand,
    SubprocessRunner,
    boot_argv,
    boot_completed_argv,
    create_avd_argv,
    disable_animations_argvs,
    focused_package,
    kill_argv,
    snapshot_load_argv,
    snapshot_save_argv,
    validate_package,
)
from emulator.page_source import load_page_source, parse_bounds
from guienv.actions import Action
from guienv.envs.android import (
    KEYCODES,
    AndroidConfig,
    AndroidEnv,
    app_package,
    scroll_gesture,
    system_port_for,
    uiautomator2_capabilities,
)
from guienv.envs.appium_commands import LaunchApp, Noop, PressKey, Swipe, SwipeGesture, Tap, TypeText, Viewport
from guienv.errors import DataError
from guienv.frames import Frame
from tasks.android_tasks import TASKS, ForegroundIs, ScreenShows, SettingEquals

SDK = AndroidSdk("/opt/sdk")
ADB = "/opt/sdk/platform-tools/adb"

INJECTIONS = [
    "com.android.settings; reboot",
    "com.android.settings && rm -rf /",
    "$(id)",
    "`id`",
    "com.example|sh",
    "-rf",
    "--user 0 com.android.settings",
    "com.android.settings\nreboot",
    "com.android.settings ",
    "com..android",
    "settings",  # one segment
    "1com.android.x",
    "",
    "com.android.séttings",
]


# -- capabilities ------------------------------------------------------------------------------
def test_capabilities_exact():
    cfg = AndroidConfig(udid="emulator-5558")
    assert uiautomator2_capabilities(cfg) == {
        "platformName": "Android",
        "appium:automationName": "UiAutomator2",
        "appium:udid": "emulator-5558",
        "appium:systemPort": 8202,
        "appium:noReset": True,
        "appium:newCommandTimeout": 120,
        "appium:disableWindowAnimation": True,
        "appium:uiautomator2ServerLaunchTimeout": 60000,
    }


def test_capabilities_pass_through_appium_options_unchanged():
    from appium.options.common import AppiumOptions

    caps = uiautomator2_capabilities(AndroidConfig(udid="emulator-5554", no_reset=False, new_command_timeout_s=30))
    w3c = AppiumOptions().load_capabilities(caps).to_w3c()["capabilities"]["alwaysMatch"]
    assert w3c == caps


def test_system_ports_unique_per_emulator_and_in_range():
    ports = [system_port_for(EmulatorConfig(index=n).serial) for n in range(10)]
    assert ports == list(range(8200, 8210))
    assert AndroidConfig(udid="emulator-5560").system_port == 8203
    with pytest.raises(ValueError, match="8200"):
        AndroidConfig(system_port=8300)
    with pytest.raises(ValueError, match="udid"):
        AndroidConfig(udid="emulator-5554; reboot")
    with pytest.raises(ValueError, match="snapshot_name"):
        AndroidConfig(reset_mode="snapshot")


# -- package validation and maintenance commands -----------------------------------------------
@pytest.mark.parametrize("bad", INJECTIONS)
def test_package_validation_rejects_injection(bad):
    with pytest.raises(ValueError):
        validate_package(bad)
    with pytest.raises(ValueError):
        MaintenanceCommand.pm_clear(bad)
    with pytest.raises(ValueError):
        MaintenanceCommand.force_stop(bad)


def test_maintenance_commands_exact():
    assert MaintenanceCommand.pm_clear("com.android.settings").mobile_shell() == {"command": "pm", "args": ["clear", "com.android.settings"]}
    assert MaintenanceCommand.force_stop("com.google.android.deskclock").adb_argv(ADB, "emulator-5554") == [
        ADB, "-s", "emulator-5554", "shell", "am", "force-stop", "com.google.android.deskclock"]
    assert MaintenanceCommand.settings_get("global", "wifi_on").mobile_shell() == {"command": "settings", "args": ["get", "global", "wifi_on"]}
    assert MaintenanceCommand.settings_put("system", "screen_off_timeout", 30000).args == ("put", "system", "screen_off_timeout", "30000")
    assert MaintenanceCommand.airplane_mode(True).args == ("connectivity", "airplane-mode", "enable")
    assert MaintenanceCommand.svc("wifi", False).args == ("wifi", "disable")
    for bad in [("global", "wifi_on; reboot"), ("other", "wifi_on"), ("global", "-k")]:
        with pytest.raises(ValueError):
            MaintenanceCommand.settings_get(*bad)
    with pytest.raises(ValueError):
        MaintenanceCommand.settings_put("global", "wifi_on", "1 && reboot")
    with pytest.raises(ValueError):
        MaintenanceCommand.svc("bluetooth", True)


def test_open_app_lookup_never_passes_model_text_through():
    pk = AndroidConfig().app_packages
    assert app_package("Settings", pk) == "com.android.settings"
    assert app_package("  play   STORE ", pk) == "com.android.vending"
    assert app_package("com.example.notes", pk) == "com.example.notes"
    for bad in INJECTIONS:
        got = app_package(bad, pk)  # a known app's package, or nothing: never the raw text
        assert got is None or got in pk.values(), bad
    assert app_package("settings; reboot", pk) is None


# -- emulator argv lists -----------------------------------------------------------------------
def test_emulator_argv_lists_exact():
    cfg = EmulatorConfig(avd_name="pixel33", index=2, snapshot="clean")
    assert (cfg.console_port, cfg.adb_port, cfg.serial, cfg.grpc) == (5558, 5559, "emulator-5558", 8556)
    assert create_avd_argv(SDK, cfg) == [
        "/opt/sdk/cmdline-tools/latest/bin/avdmanager", "create", "avd", "--name", "pixel33",
        "--package", "system-images;android-33;google_apis;x86_64", "--device", "pixel_6", "--force"]
    assert boot_argv(SDK, cfg) == [
        "/opt/sdk/emulator/emulator", "-avd", "pixel33", "-no-window", "-no-audio", "-no-boot-anim",
        "-gpu", "swiftshader_indirect", "-ports", "5558,5559", "-snapshot", "clean", "-grpc", "8556"]
    cold = EmulatorConfig(avd_name="pixel33")
    assert boot_argv(SDK, cold)[-3:] == ["-no-snapshot", "-grpc", "8554"]
    assert boot_completed_argv(SDK, "emulator-5558") == [ADB, "-s", "emulator-5558", "shell", "getprop", "sys.boot_completed"]
    assert disable_animations_argvs(SDK, "emulator-5554") == [
        [ADB, "-s", "emulator-5554", "shell", "settings", "put", "global", k, "0"]
        for k in ("window_animation_scale", "transition_animation_scale", "animator_duration_scale")]
    assert snapshot_save_argv(SDK, "emulator-5554", "clean") == [ADB, "-s", "emulator-5554", "emu", "avd", "snapshot", "save", "clean"]
    assert snapshot_load_argv(SDK, "emulator-5554", "clean") == [ADB, "-s", "emulator-5554", "emu", "avd", "snapshot", "load", "clean"]
    assert kill_argv(SDK, "emulator-5554") == [ADB, "-s", "emulator-5554", "emu", "kill"]


@pytest.mark.parametrize("kw", [
    {"avd_name": "-wipe-data"}, {"avd_name": "a b"}, {"avd_name": "x;reboot"}, {"snapshot": "$(id)"},
    {"system_image": "system-images;android-33;google_apis;x86_64;extra"}, {"gpu": "host; id"}, {"index": 64}, {"index": -1},
])
def test_emulator_config_rejects_bad_names(kw):
    with pytest.raises(ValueError):
        EmulatorConfig(**kw)
    with pytest.raises(ValueError):
        snapshot_load_argv(SDK, "emulator-5554", "-wipe")


def test_lifecycle_through_dry_run_runner():
    cfg = EmulatorConfig(avd_name="pixel33", poll_interval_s=0)
    serial = cfg.serial
    runner = DryRunRunner({tuple(boot_completed_argv(SDK, serial)): "1\n", (ADB, "-s", serial, "get-state"): "device\n"})
    emu = Emulator(cfg, SDK, runner)
    emu.create_avd()
    emu.boot()
    emu.snapshot_save("clean")
    emu.snapshot_load("clean")
    assert emu.health().ok
    emu.stop()
    assert runner.spawned == [boot_argv(SDK, cfg)]
    assert runner.calls == [
        create_avd_argv(SDK, cfg),
        boot_completed_argv(SDK, serial),
        *disable_animations_argvs(SDK, serial),
        snapshot_save_argv(SDK, serial, "clean"),
        snapshot_load_argv(SDK, serial, "clean"),
        [ADB, "-s", serial, "get-state"],
        boot_completed_argv(SDK, serial),
        kill_argv(SDK, serial),
    ]


# -- the real subprocess runner against FAKE adb/emulator executables --------------------------
FAKE_ADB = r'''#!{python}
# FAKE adb (test stand-in): records argv as JSON lines; answers getprop/settings/dumpsys.
import json, os, sys
root = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(root, "calls.jsonl"), "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
args = sys.argv[1:]
if args[-2:] == ["getprop", "sys.boot_completed"]:
    n_file = os.path.join(root, "polls")
    n = int(open(n_file).read()) if os.path.exists(n_file) else 0
    open(n_file, "w").write(str(n + 1))
    print("1" if n + 1 >= int(os.environ.get("FAKE_BOOT_AFTER", "3")) else "")
elif args[3:6] == ["settings", "get", "global"]:
    print({"wifi_on": "0", "airplane_mode_on": "1"}.get(args[6], "null"))
elif args[3:5] == ["dumpsys", "window"]:
    print("  mCurrentFocus=Window{8a1b2c u0 com.android.settings/com.android.settings.Settings}")
elif args[2:3] == ["get-state"]:
    print("device")
'''

FAKE_EMULATOR = r'''#!{python}
# FAKE emulator (test stand-in): records argv, then idles like a running emulator.
import json, os, sys, time
root = os.path.dirname(os.path.abspath(__file__))
open(os.path.join(root, "emulator_argv.json"), "w").write(json.dumps(sys.argv[1:]))
time.sleep(60)
'''


@pytest.fixture
def fake_sdk(tmp_path):
    for rel, body in (("platform-tools/adb", FAKE_ADB), ("emulator/emulator", FAKE_EMULATOR)):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body.replace("{python}", sys.executable))
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return tmp_path


def _calls(root: Path) -> list[list[str]]:
    return [json.loads(line) for line in (root / "platform-tools" / "calls.jsonl").read_text().splitlines()]


def test_subprocess_runner_boot_poll_and_teardown(fake_sdk, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_BOOT_AFTER", "3")
    sdk = AndroidSdk(str(fake_sdk))
    cfg = EmulatorConfig(avd_name="pixel33", index=1, poll_interval_s=0.01, log_dir=str(tmp_path / "logs"))
    emu = Emulator(cfg, sdk, SubprocessRunner())
    emu.boot()
    try:
        assert emu.health().ok
        emu.snapshot_save("clean")
    finally:
        emu.stop()
    assert json.loads((fake_sdk / "emulator" / "emulator_argv.json").read_text()) == boot_argv(sdk, cfg)[1:]
    calls = _calls(fake_sdk)
    polls = [c for c in calls if c[-1] == "sys.boot_completed"]
    assert len(polls) == 4  # 3 polls until "1", then one from health()
    assert calls[3:6] == [a[1:] for a in disable_animations_argvs(sdk, "emulator-5556")]
    assert calls[-1] == ["-s", "emulator-5556", "emu", "kill"]
    assert emu.pid is None


def test_boot_timeout_raises(fake_sdk, monkeypatch):
    monkeypatch.setenv("FAKE_BOOT_AFTER", "1000")
    emu = Emulator(EmulatorConfig(poll_interval_s=0.01), AndroidSdk(str(fake_sdk)), SubprocessRunner())
    with pytest.raises(EmulatorError, match="did not finish booting within 0.2s"):
        emu.wait_for_boot(timeout_s=0.2)


def test_missing_tool_is_a_clear_error(tmp_path):
    emu = Emulator(EmulatorConfig(), AndroidSdk(str(tmp_path / "nosdk")), SubprocessRunner())
    with pytest.raises(EmulatorError, match="not found"):
        emu.create_avd()


def test_task_predicates_read_device_state_through_adb(fake_sdk):
    device = AdbDeviceState(Emulator(EmulatorConfig(), AndroidSdk(str(fake_sdk)), SubprocessRunner()))
    assert TASKS["wifi_off"].is_successful(device) == 1.0  # fake adb: wifi_on = 0
    assert TASKS["airplane_mode_on"].is_successful(device) == 1.0
    assert TASKS["open_settings"].is_successful(device) == 1.0  # focus: com.android.settings
    assert TASKS["open_clock"].is_successful(device) == 0.0
    TASKS["wifi_off"].initialize(device, clear_data=True)
    calls = _calls(fake_sdk)
    assert calls[-3:] == [
        ["-s", "emulator-5554", "shell", "am", "force-stop", "com.android.settings"],
        ["-s", "emulator-5554", "shell", "pm", "clear", "com.android.settings"],
        ["-s", "emulator-5554", "shell", "svc", "wifi", "enable"],
    ]


def test_focused_package_parsing():
    assert focused_package("mCurrentFocus=Window{1f u0 com.google.android.deskclock/com.android.deskclock.DeskClock}") == "com.google.android.deskclock"
    assert focused_package("mCurrentFocus=null") is None


def test_task_definitions_are_valid():
    assert len(TASKS) >= 5
    for t in TASKS.values():
        assert t.goal and t.success
        for p in t.success:
            assert isinstance(p, (SettingEquals, ForegroundIs, ScreenShows))
    with pytest.raises(ValueError):
        SettingEquals("global", "wifi_on; reboot", "0")
    with pytest.raises(ValueError):
        ForegroundIs("com.x; id")


# -- actions -> commands -----------------------------------------------------------------------
def test_keycodes():
    assert (KEYCODES["home"], KEYCODES["back"], KEYCODES["enter"]) == (3, 4, 66)


@pytest.mark.parametrize("content,finger", [("down", "up"), ("up", "down"), ("left", "right"), ("right", "left")])
def test_scroll_direction_is_opposite_finger_direction(content, finger):
    vp = Viewport(1080, 2400)
    g = scroll_gesture(Action.scroll(content), vp, fraction=0.5, margin=0.1)
    assert g == SwipeGesture(left=108, top=240, width=864, height=1920, direction=finger, percent=0.5)


def test_scroll_at_point_and_downscaled_screenshot():
    vp = Viewport(540, 1200, scale=0.5)  # screenshot at half the device resolution
    g = scroll_gesture(Action.scroll("down", point=(270, 1100)), vp, fraction=0.6, margin=0.1)
    # Device pixels: centre (540, 2200), region 864 x 1200 clipped to the bottom of the screen.
    assert (g.left, g.top, g.width, g.height, g.direction) == (108, 1200, 864, 1200, "up")


class _Env(AndroidEnv):
    """AndroidEnv with a viewport but no session, to check planning alone."""

    def __init__(self):
        super().__init__(config=AndroidConfig())
        self.viewport = Viewport(1080, 2400)


def test_plan_android_actions():
    env = _Env()
    assert env.plan(Action.click(0.5, 0.25, frame=Frame.NORMALIZED)) == [Tap(540, 600, hold_ms=50.0)]
    assert env.plan(Action.long_press(10, 20, duration_ms=1500)) == [Tap(10, 20, hold_ms=1500.0)]
    assert env.plan(Action.swipe((100, 2000), (100, 500), duration_ms=300)) == [Swipe(100, 2000, 100, 500, 300.0)]
    assert env.plan(Action.type_text("héllo; rm -rf /", point=(5, 6))) == [Tap(5, 6, hold_ms=50.0), TypeText("héllo; rm -rf /")]
    assert env.plan(Action.simple("navigate_home")) == [PressKey("home")]
    assert env.plan(Action.simple("navigate_back")) == [PressKey("back")]
    assert env.plan(Action.simple("keyboard_enter")) == [PressKey("enter")]
    assert env.plan(Action.open_app("Clock")) == [LaunchApp("com.google.android.deskclock")]
    assert env.plan(Action.open_app("clock; reboot")) == [Noop("unknown app 'clock; reboot'")]
    assert env.plan(Action.scroll("down"))[0].direction == "up"
    assert env.plan(Action.click(5000, -20)) == [Tap(1079, 0, hold_ms=50.0)]  # clamped to the screen
    assert env.plan(Action.finish()) == []


# -- page source -------------------------------------------------------------------------------
PAGE_SOURCE = """<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>
<hierarchy index="0" class="hierarchy" rotation="0" width="1080" height="2400">
  <android.widget.FrameLayout index="0" package="com.android.settings" class="android.widget.FrameLayout" text="" resource-id="" checkable="false" checked="false" clickable="false" enabled="true" focusable="false" focused="false" long-clickable="false" password="false" scrollable="false" selected="false" bounds="[0,0][1080,2400]" displayed="true">
    <androidx.recyclerview.widget.RecyclerView index="0" package="com.android.settings" class="androidx.recyclerview.widget.RecyclerView" text="" resource-id="com.android.settings:id/recycler_view" checkable="false" checked="false" clickable="false" enabled="true" focusable="true" focused="false" long-clickable="false" password="false" scrollable="true" selected="false" bounds="[0,303][1080,2337]" displayed="true">
      <android.widget.LinearLayout index="0" package="com.android.settings" class="android.widget.LinearLayout" text="" resource-id="" checkable="false" checked="false" clickable="true" enabled="true" focusable="true" focused="false" long-clickable="false" password="false" scrollable="false" selected="false" bounds="[0,303][1080,512]" displayed="true">
        <android.widget.TextView index="0" package="com.android.settings" class="android.widget.TextView" text="Network &amp; internet" resource-id="android:id/title" checkable="false" checked="false" clickable="false" enabled="true" focusable="false" focused="false" long-clickable="false" password="false" scrollable="false" selected="false" bounds="[189,352][598,411]" displayed="true" />
        <android.widget.Switch index="1" package="com.android.settings" class="android.widget.Switch" text="" resource-id="android:id/switch_widget" checkable="true" checked="true" clickable="true" enabled="true" focusable="true" focused="false" long-clickable="false" password="false" scrollable="false" selected="false" bounds="[900,370][1038,446]" displayed="true" content-desc="Wi-Fi" />
      </android.widget.LinearLayout>
      <android.widget.EditText index="1" package="com.android.settings" class="android.widget.EditText" text="Search settings" resource-id="com.android.settings:id/search_src_text" checkable="false" checked="false" clickable="true" enabled="true" focusable="true" focused="true" long-clickable="true" password="false" scrollable="false" selected="false" bounds="[42,160][1038,280]" displayed="true" />
      <android.view.View index="2" package="com.android.settings" class="android.view.View" text="" resource-id="" checkable="false" checked="false" clickable="false" enabled="true" focusable="false" focused="false" long-clickable="false" password="false" scrollable="false" selected="false" bounds="[0,0][0,0]" displayed="false" />
    </androidx.recyclerview.widget.RecyclerView>
  </android.widget.FrameLayout>
</hierarchy>
"""


def test_bounds_parsing_of_a_page_source_file(tmp_path):
    path = tmp_path / "source.xml"
    path.write_text(PAGE_SOURCE, encoding="utf-8")
    els = load_page_source(path)
    assert [e["class_name"].rsplit(".", 1)[-1] for e in els] == ["FrameLayout", "RecyclerView", "LinearLayout", "TextView", "Switch", "EditText"]
    title = els[3]
    assert title["box"] == [189.0, 352.0, 598.0, 411.0] and title["text"] == "Network & internet"
    assert title["resource_id"] == "android:id/title" and not title["clickable"]
    switch = els[4]
    assert switch["checkable"] and switch["checked"] and switch["clickable"] and switch["content_description"] == "Wi-Fi"
    edit = els[5]
    assert edit["editable"] and edit["focused"] and edit["text"] == "Search settings"
    assert els[1]["scrollable"] and els[1]["resource_id"] == "com.android.settings:id/recycler_view"
    from guienv.envs.appium_base import element_from_dict

    ui = element_from_dict(switch)
    assert ui.box == (900.0, 370.0, 1038.0, 446.0) and ui.checked


def test_bad_bounds_name_the_file_node_and_field(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text(PAGE_SOURCE.replace("[189,352][598,411]", "[189,352][598]"), encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.xml.*node \d+ <android.widget.TextView>.*'bounds'"):
        load_page_source(path)
    path.write_text("<hierarchy><node", encoding="utf-8")
    with pytest.raises(DataError, match="well-formed"):
        load_page_source(path)
    for bad in ("[1,2][3]", "[3,4][1,2]", "1,2,3,4", ""):
        with pytest.raises(ValueError):
            parse_bounds(bad)


# -- the env's glue against a scripted FAKE UiAutomator2 session --------------------------------
class FakeUiAutomator2Driver:
    """FAKE UiAutomator2 session (no emulator can run here): serves a fixed page source and
    screenshot, answers `mobile: shell settings get` from a dict, and records every call."""

    def __init__(self, settings: dict[str, str]):
        from guienv.io import encode_png

        self.settings = settings
        self.calls: list[tuple] = []
        self.session_id = "fake-session"
        self._png = encode_png(np.full((2400, 1080, 3), 200, np.uint8))
        self.current_package = "com.android.settings"
        self.page_source = PAGE_SOURCE

    def get_screenshot_as_png(self):
        return self._png

    def execute_script(self, name, args=None):
        self.calls.append(("execute_script", name, args))
        if name == "mobile: shell" and args["command"] == "settings" and args["args"][0] == "get":
            return self.settings.get(args["args"][2], "null") + "\n"
        return ""

    def press_keycode(self, code):
        self.calls.append(("press_keycode", code))

    def activate_app(self, pkg):
        self.calls.append(("activate_app", pkg))

    def execute(self, command, params=None):  # W3C actions from ActionBuilder.perform()
        self.calls.append(("execute", command, params))
        return {"value": None}

    def quit(self):
        self.calls.append(("quit",))


class _FakeSessionEnv(AndroidEnv):
    def new_driver(self):
        self.fake = FakeUiAutomator2Driver({"wifi_on": "1"})
        return self.fake


def test_env_reset_step_finish_against_fake_session():
    env = _FakeSessionEnv(config=AndroidConfig(tasks=("wifi_off",), settle_s=0))
    obs, info = env.reset(seed=0)
    calls = env.fake.calls
    assert calls[:4] == [
        ("execute_script", "mobile: shell", {"command": "am", "args": ["force-stop", "com.android.settings"]}),
        ("execute_script", "mobile: shell", {"command": "pm", "args": ["clear", "com.android.settings"]}),
        ("execute_script", "mobile: shell", {"command": "svc", "args": ["wifi", "enable"]}),
        ("press_keycode", 3),
    ]
    assert obs["instruction"] == "Turn off Wi-Fi." and obs["screenshot"].shape == (2400, 1080, 3)
    assert json.loads(obs["elements"])[4]["content_description"] == "Wi-Fi"
    env.step(Action.scroll("down"))
    assert calls[-1] == ("execute_script", "mobile: swipeGesture",
                         {"left": 108, "top": 240, "width": 864, "height": 1920, "direction": "up", "percent": 0.5})
    env.step(Action.click(969, 408))
    cmd, params = calls[-1][1], calls[-1][2]
    assert cmd == "actions"
    moves = params["actions"][0]["actions"]
    assert params["actions"][0]["parameters"] == {"pointerType": "touch"}
    assert [m["type"] for m in moves] == ["pointerMove", "pointerDown", "pause", "pointerUp"]
    assert (moves[0]["x"], moves[0]["y"]) == (969, 408)
    env.step(Action.open_app("Settings"))
    assert calls[-1] == ("activate_app", "com.android.settings")
    _, r, term, _, info = env.step(Action.finish())
    assert (r, term, info["success"]) == (0.0, True, False)  # wifi_on is still 1
    env.fake.settings["wifi_on"] = "0"
    _, r, term, _, info = env.step(Action.finish())
    assert (r, info["success"]) == (1.0, True)
    env.close()


def test_emulator_cli_dry_run_prints_argv(capsys):
    import argparse

    from emulator.android import add_emulator_args

    parser = argparse.ArgumentParser()
    add_emulator_args(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["emulator", "boot", "--avd", "pixel33", "--index", "1", "--sdk-root", "/opt/sdk", "--dry-run"])
    assert args.func(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [boot_argv(SDK, EmulatorConfig(avd_name="pixel33", index=1))]
    args = parser.parse_args(["emulator", "snapshot-load", "clean", "--sdk-root", "/opt/sdk", "--dry-run"])
    args.func(args)
    assert json.loads(capsys.readouterr().out) == snapshot_load_argv(SDK, "emulator-5554", "clean")
    with pytest.raises(ValueError):
        args = parser.parse_args(["emulator", "snapshot-load", "--dry-run", "--", "-wipe-data"])
        args.func(args)


def test_elements_json_is_bounded_and_drops_are_reported():
    env = _FakeSessionEnv(config=AndroidConfig(tasks=("open_settings",), max_elements_chars=1500))
    obs, info = env.reset(seed=0)
    assert len(obs["elements"]) <= 1500 and info["elements_dropped"] > 0
    assert len(json.loads(obs["elements"])) + info["elements_dropped"] == 6
    assert env.observation_space.contains(obs)
    env.close()


def test_appium_configs_load_through_the_one_config_loader(tmp_path):
    import yaml

    from guienv.config import load_yaml
    from guienv.envs.chromium import ChromiumConfig

    path = tmp_path / "android.yaml"
    path.write_text(yaml.safe_dump({"udid": "emulator-5556", "tasks": ["wifi_off"], "swipe_ms": 300}))
    cfg = load_yaml(AndroidConfig, path)
    assert (cfg.udid, cfg.tasks, cfg.swipe_ms) == ("emulator-5556", ("wifi_off",), 300.0)
    assert AndroidConfig.from_dict({"udid": "emulator-5556", "tasks": ["wifi_off"], "swipe_ms": 300}) == cfg
    with pytest.raises(DataError, match="unknown key 'udidd'"):
        AndroidConfig.from_dict({"udidd": "x"}, "android.yaml")
    with pytest.raises(DataError, match="android.yaml.*max_steps"):
        AndroidConfig.from_dict({"max_steps": "many"}, "android.yaml")
    assert ChromiumConfig.from_dict({"window_size": [640, 480]}).window_size == (640, 480)
