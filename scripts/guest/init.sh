#!/bin/busybox sh
# syncamp test guest: the init of a busybox initramfs. Loads the virtio and ext4
# modules, says SYNCAMP-READY on the console, waits for a line ("go"), runs the
# workload named on the kernel command line, says what it did (SYNCAMP-DONE
# with the number of fsyncs it issued), waits for another line and powers off.
#
# Kernel parameters: syncamp.workload=raw-alloc|overwrite|ext4  syncamp.n=N
#                    syncamp.disks=K (workload on /dev/vda .. the K-th disk)
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk \
         crc16 mbcache jbd2 crc32c_generic ext4; do
  insmod /lib/modules/$m.ko 2>/dev/null
done

workload=raw-alloc; n=5; disks=1
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    syncamp.workload=*) workload=${arg#*=} ;;
    syncamp.n=*) n=${arg#*=} ;;
    syncamp.disks=*) disks=${arg#*=} ;;
  esac
done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
devs=$(for d in vda vdb vdc vdd; do echo /dev/$d; done | head -n "$disks")
if [ "$workload" = ext4 ]; then
  # commit=600: no periodic journal commit of the guest lands in the traced window
  mkdir -p /mnt && mount -t ext4 -o commit=600 /dev/vda /mnt || echo "SYNCAMP-ERROR mount"
fi

echo "SYNCAMP-READY workload=$workload n=$n disks=$disks"
read -r _

fsyncs=0
i=0
while [ $i -lt "$n" ]; do
  for dev in $devs; do
    case "$workload" in
      # 4 KiB into a new 64 KiB cluster of the raw virtio disk, then fsync (a flush request).
      raw-alloc) dd if=/dev/urandom of=$dev bs=4096 count=1 seek=$((i * 16)) conv=fsync,notrunc 2>/dev/null ;;
      # The same 4 KiB again and again.
      overwrite) dd if=/dev/urandom of=$dev bs=4096 count=1 seek=0 conv=fsync,notrunc 2>/dev/null ;;
      # A new 4 KiB file on ext4, then fsync: the guest journal adds its own flushes.
      ext4) dd if=/dev/urandom of=/mnt/f$i bs=4096 count=1 conv=fsync 2>/dev/null ;;
    esac
    fsyncs=$((fsyncs + 1))
  done
  i=$((i + 1))
done
echo "SYNCAMP-DONE workload=$workload fsyncs=$fsyncs"
read -r _
[ "$workload" = ext4 ] && umount /mnt
poweroff -f
