// Probe roles (ProbeRole) and QEMU's versions and ABI live in SyncampProbes; readers of
// captures see them through this module as before.
@_exported import SyncampProbes
