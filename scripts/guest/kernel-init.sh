#!/bin/busybox sh
# syncamp kernel guest: the init of the initramfs that scripts/guest/run-kernel.sh boots
# on one of Debian's kernels. Runs the collector on the testbed's qemu-io in each mode
# (--kernel-probe kprobe and tracepoint), first with the images on tmpfs and ext4 not
# loaded, then with ext4 loaded and the images on it (/dev/vda), and strace on the same
# workloads; writes everything as a tar to /dev/vdb and powers off.
/bin/busybox --install -s /bin
export PATH=/bin:/opt/syncamp
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
load() {
  while read -r m; do insmod "/lib/modules/$m.ko" || echo "SYNCAMP-ERROR insmod $m"; done <"/lib/modules/$1.order"
}
load base
i=0; while [ ! -b /dev/vdb ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done

out=/tmp/out
mkdir -p "$out/formats"
uname -r >"$out/release"
echo "SYNCAMP-KERNEL $(uname -r)"

# The record layouts the BPF programs read, as this kernel has them (for the record).
formats() {
  for e in syscalls/sys_enter_fdatasync ext4/ext4_sync_file_enter ext4/ext4_sync_file_exit jbd2/jbd2_start_commit \
           jbd2/jbd2_end_commit jbd2/jbd2_run_stats block/block_rq_issue block/block_rq_complete \
           io_uring/io_uring_submit_req io_uring/io_uring_submit_sqe io_uring/io_uring_complete; do
    f=/sys/kernel/tracing/events/$e/format
    [ -f "$f" ] && cp "$f" "$out/formats/$1-$(echo "$e" | tr / _)"
  done
}

# counters NAME: the flush requests vda completed (field 16 of its stat) and the
# transactions its journal committed, as the kernel counts them
counters() {
  awk '{print $16}' /sys/block/vda/stat >"$out/$1.flushes"
  for f in /proc/fs/jbd2/vda*/info; do [ -f "$f" ] && awk 'NR == 1 {print $1}' "$f"; done >"$out/$1.commits"
}

# run FS DIR: each scenario traced in each mode, and once under strace; then a fresh
# image with aio=io_uring, whose host syncs are io_uring fsyncs (no system call)
run() {
  fs=$1; dir=$2
  mkdir -p "$dir"
  formats "$fs"
  for scenario in fresh pairs; do
    if [ "$scenario" = fresh ]; then set -- -c "write 0 4k" -c flush
    else set --; n=0; while [ $n -lt 10 ]; do set -- "$@" -c "write $((n * 64))k 4k" -c flush; n=$((n + 1)); done; fi
    for mode in kprobe tracepoint; do
      name="$fs-$scenario-$mode"
      qemu-img create -q -f qcow2 "$dir/$name.qcow2" 1G
      sync; counters "$name.before"
      collector --kernel-probe "$mode" -o "$out/$name.syncamp" -- qemu-io -f qcow2 -t writeback "$@" "$dir/$name.qcow2" \
        >"$out/$name.log" 2>&1
      echo $? >"$out/$name.status"
      counters "$name.after"
      echo "SYNCAMP-RAN $name status $(cat "$out/$name.status")"
    done
    name="$fs-$scenario"
    qemu-img create -q -f qcow2 "$dir/$name.qcow2" 1G
    strace -f -qq -e trace=fdatasync,fsync -o "$out/$name.strace" qemu-io -f qcow2 -t writeback "$@" "$dir/$name.qcow2" \
      >"$out/$name.strace.log" 2>&1
    echo $? >"$out/$name.strace.status"
  done
  name="$fs-uring"
  qemu-img create -q -f qcow2 "$dir/$name.qcow2" 1G
  collector -o "$out/$name.syncamp" -- qemu-io -t writeback --image-opts -c "write 0 4k" -c flush \
    "driver=qcow2,file.filename=$dir/$name.qcow2,file.aio=io_uring" >"$out/$name.log" 2>&1
  echo $? >"$out/$name.status"
  echo "SYNCAMP-RAN $name status $(cat "$out/$name.status")"
}

run tmpfs /tmp/images
load ext4
mkdir -p /mnt
if mount -t ext4 /dev/vda /mnt; then run ext4 /mnt/images; umount /mnt; else echo "SYNCAMP-ERROR mount ext4"; fi

tar -cf /dev/vdb -C "$out" .
sync
echo "SYNCAMP-GUEST-DONE"
poweroff -f
