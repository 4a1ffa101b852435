"""zram (drivers/block/zram, Linux 6.18) on the zsmalloc model.

``device`` is the block device with its sysfs attributes (:class:`~zsmalloc.zram.device.Zram`,
also ``zsmalloc.Zram``); ``table`` the slot table and store/free paths (numba);
``stats`` the counters and the exact text of the stat files; ``sysfs`` the kernel's
argument parsers; ``writeback``, ``recompress`` and ``postprocess`` the
post-processing jobs; ``trace`` and ``replay`` the size traces recorded on the
kernel and their replay.  See docs/zram.md.
"""
