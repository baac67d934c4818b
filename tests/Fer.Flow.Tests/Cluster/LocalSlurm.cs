using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Fer.Tests.Shared;

namespace Fer.Flow.Tests.Cluster;

/// <summary>
/// A real one-machine Slurm for the tests: Debian's slurm-wlm and munge (installed as root with apt where missing),
/// slurmctld and slurmd started with a configuration written into a temporary folder (own ports, SlurmUser root, no
/// accounting), and SLURM_CONF pointing at it for this process and the jobs it submits. Stopped when the tests end.
/// No mock of sbatch stands in for it: where Slurm cannot be had, the tests skip and say why.
/// </summary>
public sealed class LocalSlurm : IDisposable
{
    private readonly List<Process> _daemons = [];

    public string? Problem { get; }
    public string Folder { get; } = Path.Combine(Path.GetTempPath(), "fer-slurm-" + Guid.NewGuid().ToString("N")[..8]);
    public string Config => Path.Combine(Folder, "slurm.conf");
    public string Partition => "fer";

    public LocalSlurm()
    {
        try { Problem = Start(); }
        catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            Problem = $"a local Slurm could not be started: {e.Message}";
        }
        if (Problem is null)
        {
            Environment.SetEnvironmentVariable("SLURM_CONF", Config);
            Environment.SetEnvironmentVariable("FER_SLURM_POLL_SECONDS", "0.5");
        }
    }

    public void SkipUnlessRunning() => Skip.If(Problem is not null, Problem);

    private string? Start()
    {
        if (!OperatingSystem.IsLinux()) return "Slurm tests run on Linux";
        if (!File.Exists("/usr/sbin/slurmctld") || !File.Exists("/usr/bin/sbatch") || !File.Exists("/usr/sbin/munged"))
        {
            if (Environment.UserName != "root") return "Slurm is not installed and the tests are not root (apt-get install slurm-wlm munge)";
            string[] install = ["install", "-y", "-q", "--no-install-recommends", "slurm-wlm", "munge"];
            if (OpenCvForTests.Exec("apt-get", install).Code != 0 && OpenCvForTests.Exec("apt-get", "update", "-q").Code == 0)
                OpenCvForTests.Exec("apt-get", install);
            if (!File.Exists("/usr/sbin/slurmctld")) return "apt-get could not install slurm-wlm and munge";
        }
        if (Environment.UserName != "root") return "the test's slurmd runs jobs as root (SlurmUser=root)";
        if (OpenCvForTests.Exec("pgrep", "-x", "munged").Code != 0)
        {
            Directory.CreateDirectory("/run/munge");
            OpenCvForTests.Exec("chown", "munge:munge", "/run/munge");
            if (OpenCvForTests.Exec("runuser", "-u", "munge", "--", "/usr/sbin/munged").Code != 0 && OpenCvForTests.Exec("/usr/sbin/munged", "--force").Code != 0)
                return "munged would not start";
        }
        Directory.CreateDirectory(Path.Combine(Folder, "state"));
        Directory.CreateDirectory(Path.Combine(Folder, "spool"));
        var host = OpenCvForTests.Exec("hostname", "-s").Output.Trim();
        File.WriteAllText(Config, $"""
            ClusterName=fer{Guid.NewGuid().ToString("N")[..6]}
            SlurmctldHost={host}
            SlurmctldPort={FreePort()}
            SlurmdPort={FreePort()}
            SlurmUser=root
            SlurmdUser=root
            AuthType=auth/munge
            StateSaveLocation={Folder}/state
            SlurmdSpoolDir={Folder}/spool
            SlurmctldPidFile={Folder}/slurmctld.pid
            SlurmdPidFile={Folder}/slurmd.pid
            SlurmctldLogFile={Folder}/slurmctld.log
            SlurmdLogFile={Folder}/slurmd.log
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            SelectType=select/cons_tres
            SelectTypeParameters=CR_CPU
            AccountingStorageType=accounting_storage/none
            JobAcctGatherType=jobacct_gather/none
            MinJobAge=600
            KillWait=2
            SchedulerParameters=sched_interval=1
            ReturnToService=2
            NodeName={host} CPUs={Environment.ProcessorCount} State=UNKNOWN
            PartitionName={Partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP

            """);
        // -D: in the foreground, as children of this process, so they end with it even if Dispose never runs.
        foreach (var daemon in new[] { "/usr/sbin/slurmctld", "/usr/sbin/slurmd" })
        {
            var start = new ProcessStartInfo(daemon) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "-D", "-f", Config }) start.ArgumentList.Add(a);
            start.Environment["SLURM_CONF"] = Config;
            var p = Process.Start(start)!;
            p.OutputDataReceived += (_, _) => { };
            p.ErrorDataReceived += (_, _) => { };
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            _daemons.Add(p);
        }
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            var start = new ProcessStartInfo("sinfo", ["-h", "-o", "%t"]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            start.Environment["SLURM_CONF"] = Config;
            using var sinfo = Process.Start(start)!;
            var state = sinfo.StandardOutput.ReadToEnd().Trim();
            sinfo.WaitForExit();
            if (state == "idle") return null;
            if (_daemons.Any(d => d.HasExited)) return $"a Slurm daemon exited at start; see {Folder}/slurmctld.log";
            Thread.Sleep(250);
        }
        return $"the test's Slurm node never became idle; see {Folder}/slurmctld.log";
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Runs a Slurm command against this cluster and returns its output.</summary>
    public string Command(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["SLURM_CONF"] = Config;
        using var p = Process.Start(start)!;
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return output;
    }

    public void Dispose()
    {
        foreach (var d in _daemons)
        {
            try { if (!d.HasExited) d.Kill(entireProcessTree: true); d.WaitForExit(5000); }
            catch (InvalidOperationException) { }
            d.Dispose();
        }
        try { Directory.Delete(Folder, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

[CollectionDefinition(Name)]
public sealed class SlurmCollection : ICollectionFixture<LocalSlurm>
{
    public const string Name = "slurm";
}
