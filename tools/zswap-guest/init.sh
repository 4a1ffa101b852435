#!/bin/sh
# /init of a zswap store-only guest run (tools/zswap-guest/record.py): swap on zram0, zswap
# on with the chosen pool, compressor and parameters, then zswaprun; output on ttyS1.
# Derived from guest-oracle's zswap-init.sh; /data/params and /data/step are additions.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t debugfs none /sys/kernel/debug
for m in $(cat /etc/modules.order); do insmod /lib/modules/$m.ko 2>/dev/null; done
for m in /lib/modules/*.ko; do grep -qx "$(basename $m .ko)" /etc/modules.order || insmod $m 2>/dev/null; done
i=0; while [ ! -b /dev/zram0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
echo 512M > /sys/block/zram0/disksize
mkswap /dev/zram0 >/dev/null && swapon /dev/zram0
P=/sys/module/zswap/parameters
ZPOOL=$(cat /data/zpool); COMP=$(cat /data/comp); N=$(cat /data/n); STEP=$(cat /data/step)
echo "$COMP" > $P/compressor
[ -n "$ZPOOL" ] && [ -e $P/zpool ] && echo "$ZPOOL" > $P/zpool
while read name value; do [ -n "$name" ] && echo "$value" > $P/$name; done < /data/params
echo 1 > $P/enabled
{
  echo "# guest $(uname -r) zpool=$(cat $P/zpool 2>/dev/null) compressor=$(cat $P/compressor) enabled=$(cat $P/enabled) max_pool_percent=$(cat $P/max_pool_percent)"
  for f in $P/*; do echo "# param $(basename $f) $(cat $f)"; done
  /bin/zswaprun /data/pages.bin "$N" $STEP
  echo "# zram mm_stat $(cat /sys/block/zram0/mm_stat)"
} > /dev/ttyS1 2>&1
sync
poweroff -f
echo o > /proc/sysrq-trigger
