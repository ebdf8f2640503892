namespace Livegraft.Vm;

/// <summary>The shell scripts the initramfs runs: <c>/init</c> and the serial command loop.</summary>
/// <remarks>See docs/vm.md for the protocol these implement together with <see cref="VmSession"/>.</remarks>
internal static class GuestScripts
{
    /// <summary>Guest path of the command loop.</summary>
    public const string LoopPath = "/etc/livegraft/serial-loop";

    /// <summary>Directory whose <c>*.sh</c> files <c>/init</c> sources before the loop starts.</summary>
    public const string InitHooksDirectory = "/etc/livegraft/init.d";

    /// <summary>PID 1. Mounts the pseudo file systems, quiets the console, runs hooks, then serves
    /// commands on the serial port forever (the kernel panics if PID 1 exits).</summary>
    public const string Init = """
        #!/bin/sh
        # Livegraft VM init (PID 1). Generated; see src/Livegraft.Vm/GuestScripts.cs.
        export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        # CONFIG_DEVTMPFS_MOUNT is off: the kernel does not mount /dev into an initramfs itself.
        mount -t devtmpfs devtmpfs /dev
        mkdir -p /dev/pts /dev/shm
        mount -t devpts devpts /dev/pts
        mount -t tmpfs tmpfs /dev/shm
        mount -t tmpfs tmpfs /run
        mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
        mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
        ln -s /proc/self/fd /dev/fd 2>/dev/null
        ln -s /proc/self/fd/0 /dev/stdin 2>/dev/null
        ln -s /proc/self/fd/1 /dev/stdout 2>/dev/null
        ln -s /proc/self/fd/2 /dev/stderr 2>/dev/null
        # Only KERN_EMERG reaches the console, so kernel chatter rarely lands inside command
        # output; the ring buffer keeps everything for `dmesg`. Panics still print (panic()
        # raises the console level itself).
        dmesg -n 1
        hostname livegraft
        ip link set lo up 2>/dev/null
        # Read the nonce before the hooks run: a hook may load a live patch that changes what
        # /proc/cmdline prints.
        nonce=
        for word in $(cat /proc/cmdline); do
            case "$word" in lg.nonce=*) nonce="${word#lg.nonce=}" ;; esac
        done
        for hook in /etc/livegraft/init.d/*.sh; do
            [ -f "$hook" ] && . "$hook"
        done
        tty=/dev/ttyS0
        [ -c "$tty" ] || tty=/dev/console
        cd /root
        while :; do
            /bin/sh /etc/livegraft/serial-loop "$nonce" <"$tty" >"$tty" 2>&1
            sleep 1
        done
        """;

    /// <summary>The command loop. Lines from the host:
    /// <c>D &lt;base64&gt;</c> appends to a buffer; <c>X &lt;id&gt; &lt;seconds&gt;</c> runs the
    /// buffer as a script; <c>F &lt;id&gt; &lt;octal-mode&gt; &lt;path&gt;</c> writes the buffer to a file.</summary>
    public const string Loop = """
        #!/bin/sh
        # Livegraft serial command loop. Generated; see src/Livegraft.Vm/GuestScripts.cs and docs/vm.md.
        n="$1"
        b=/run/livegraft
        mkdir -p "$b"
        # No echo: the host's own lines must not come back. No onlcr: output bytes stay as the
        # command wrote them (the host drops \r before \n from kernel messages).
        stty -echo -onlcr 2>/dev/null
        printf '\n@@LG-READY:%s@@\n' "$n"
        while IFS= read -r line; do
            case "$line" in
            "D "*)
                printf '%s\n' "${line#D }" >>"$b/buf" ;;
            "X "*)
                set -- ${line#X }
                id="$1" t="$2"
                base64 -d "$b/buf" >"$b/cmd.sh" 2>/dev/null
                rm -f "$b/buf" "$b/timedout"
                printf '\n@@LGB:%s:%s@@\n' "$n" "$id"
                # Own session, hence own process group: a timeout kills the command and
                # everything it started, and nothing else.
                setsid sh "$b/cmd.sh" </dev/null 2>&1 &
                pid=$!
                wpid=
                if [ "$t" -gt 0 ]; then
                    setsid sh -c "sleep $t; echo $id >$b/timedout; kill -s KILL -- -$pid" </dev/null >/dev/null 2>&1 &
                    wpid=$!
                fi
                wait "$pid" 2>/dev/null
                rc=$?
                [ -n "$wpid" ] && kill -s KILL -- "-$wpid" 2>/dev/null
                [ "$(cat "$b/timedout" 2>/dev/null)" = "$id" ] && rc=T
                printf '\n@@LGE:%s:%s:%s@@\n' "$n" "$id" "$rc" ;;
            "F "*)
                set -- ${line#F }
                id="$1" mode="$2" path="$3"
                mkdir -p "$(dirname "$path")" && base64 -d "$b/buf" >"$path" && chmod "$mode" "$path"
                rc=$?
                rm -f "$b/buf"
                printf '\n@@LGE:%s:%s:%s@@\n' "$n" "$id" "$rc" ;;
            esac
        done
        """;
}
