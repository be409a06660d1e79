"""Android emulators (AVD lifecycle through adb/emulator argv lists) and the Appium server process."""

from emulator.android import (
    AdbDeviceState,
    AndroidSdk,
    DryRunRunner,
    Emulator,
    EmulatorConfig,
    EmulatorError,
    MaintenanceCommand,
    SubprocessRunner,
)
from emulator.appium_server import AppiumServer, AppiumServerConfig, AppiumServerError

__all__ = [
    "AdbDeviceState",
    "AndroidSdk",
    "AppiumServer",
    "AppiumServerConfig",
    "AppiumServerError",
    "DryRunRunner",
    "Emulator",
    "EmulatorConfig",
    "EmulatorError",
    "MaintenanceCommand",
    "SubprocessRunner",
]
