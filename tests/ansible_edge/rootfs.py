"""The chroot the edge playbook tests deploy into: :mod:`training_scripts.emulation.rootfs`
(one place for root filesystems, native and emulated), re-exported for the tests."""

from training_scripts.emulation.rootfs import ARCHES, Chroot, rootfs_tarball

__all__ = ["ARCHES", "Chroot", "rootfs_tarball"]
