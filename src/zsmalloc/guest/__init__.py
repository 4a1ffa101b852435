"""Other kernels, booted in QEMU: the model checked against the kernel a distribution ships.

The running kernel is one version; users run many (Debian 12's 6.1, Debian 13's 6.12,
Android's 6.6, backports up to 7.x).  This package boots a Debian kernel *package*
(nothing installed, no root needed beyond what QEMU needs) with a tiny initramfs whose
only program runs a zram workload and reports ``mm_stat`` after every step; the same
workload then runs on the model with that kernel's profile, and the first difference
is reported (``zsmalloc verify --guest linux-image-....deb``).

Module map, one concept each:

- ``deb``        read a kernel package (ar + data.tar): release, vmlinuz, the zram and
                 compressor modules in load order (dependencies from ``.modinfo``)
- ``initramfs``  the guest's root: a newc cpio of /init, the modules and the workload
- ``init.c``     /init itself (static C): load the modules, run the workload on
                 /dev/zram0, print every step on the second serial port, power off
- ``program``    the workload as /init reads it, and its output parsed back
- ``qemu``       boot it: qemu-system-x86_64 (KVM where it works, else TCG), serial
                 ports to files, a timeout
- ``verify``     :func:`verify_guest`: the run above, replayed against the model

Derived from the project's ``guest-oracle`` tools (which recorded the traces in
tests/data/kernels), rewritten so that the host needs only QEMU and a C compiler.
"""
