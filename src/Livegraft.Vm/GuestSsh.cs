using System.Globalization;

namespace Livegraft.Vm;

/// <summary>
/// An SSH server in the guest, reachable only through a port forward on the host's loopback
/// (docs/vm.md, "SSH"): QEMU user-mode networking with <c>restrict=on</c>, so the guest can make no
/// connection of its own, and <c>hostfwd=tcp:127.0.0.1:PORT-10.0.2.15:22</c> to Debian's dropbear
/// (package dropbear-bin) running as the guest's sshd. Root logs in with the given public keys only
/// (with none, nobody can log in).
/// </summary>
public static class GuestSsh
{
    /// <summary>The guest's address on QEMU's user network (its first DHCP address, set statically here).</summary>
    public const string GuestAddress = "10.0.2.15";

    /// <summary>The host's dropbear server.</summary>
    public const string Dropbear = "/usr/sbin/dropbear";

    /// <summary>Adds the network driver, dropbear with its libraries, root's <c>authorized_keys</c> and the
    /// init hook that brings up <c>eth0</c> and starts dropbear.</summary>
    public static void Configure(InitramfsBuilder b, VmOptions o)
    {
        if (!File.Exists(Dropbear))
            throw new LivegraftException(ExitCode.HostFailure, VmErrors.ExecutableUnusable, "dropbear not found; install dropbear-bin (scripts/install-deps does)", Dropbear);
        foreach (var m in new[] { "virtio_pci", "virtio_net" })
            b.AddModule(m);
        b.AddExecutable(Dropbear, Dropbear);
        b.AddDirectory("/etc/dropbear", 0x1C0);
        b.AddDirectory("/root/.ssh", 0x1C0);
        b.AddText("/root/.ssh/authorized_keys", string.Concat(o.AuthorizedKeys.Select(k => k.Trim() + "\n")), 0x180);
        // -R makes the host key on the first connection (ed25519 is what OpenSSH asks for first: fast
        // even under TCG); -s: keys only; output goes nowhere, the serial console carries the protocol.
        b.AddInitHook("20-ssh", $"""
            modprobe virtio_pci; modprobe virtio_net
            i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
            ip link set eth0 up && ip addr add {GuestAddress}/24 dev eth0
            {Dropbear} -R -s -p 22 -P /run/dropbear.pid </dev/null >/dev/null 2>&1

            """);
    }

    /// <summary>Reads an <c>authorized_keys</c>-style public key file for <see cref="VmOptions.AuthorizedKeys"/> (LG0710 when missing).</summary>
    public static string ReadPublicKey(string path) =>
        File.Exists(path) ? File.ReadAllText(path) : throw new LivegraftException(ExitCode.InvalidInput, VmErrors.InitramfsFileMissing, "public key file not found", path);

    /// <summary>QEMU arguments for the network card and the loopback-only forward of <paramref name="port"/>.</summary>
    public static IEnumerable<string> QemuArguments(int port)
    {
        var p = port.ToString(CultureInfo.InvariantCulture);
        // romfile= : no PXE option ROM (the ipxe package may be absent, and nothing boots from the network).
        return ["-netdev", $"user,id=lgnet,restrict=on,hostfwd=tcp:127.0.0.1:{p}-{GuestAddress}:22", "-device", "virtio-net-pci,netdev=lgnet,romfile="];
    }

    /// <summary>A TCP port on 127.0.0.1 that is free now (the kernel picks it), for <see cref="VmOptions.SshPort"/>.</summary>
    public static int FreeLoopbackPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
