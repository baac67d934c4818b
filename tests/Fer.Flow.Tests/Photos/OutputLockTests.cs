using System.Diagnostics;
using Fer.Flow.Cli;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Tests.Photos;

/// <summary>
/// One writer per output folder: while another process (util-linux's flock(1), holding the folder's lock as a second
/// `fer export` or `fer predict` would) writes into an --out, a command for the same folder stops at once with exit 3
/// and one line, and writes nothing there; when the holder is gone, the same command succeeds.
/// </summary>
public sealed partial class PhotoCommandTests
{
    /// <summary>flock(1) holding <paramref name="lockFile"/> exclusively in its own process until disposed (killed).</summary>
    private sealed class ForeignHolder : IDisposable
    {
        private readonly Process _process;

        public ForeignHolder(string lockFile)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(lockFile)!);
            var start = new ProcessStartInfo("flock") { RedirectStandardOutput = true, RedirectStandardInput = true };
            // Holds the lock, says so, and keeps it until its stdin closes.
            foreach (var a in new[] { "-x", lockFile, "sh", "-c", "echo held; cat >/dev/null" }) start.ArgumentList.Add(a);
            _process = Process.Start(start)!;
            Assert.Equal("held", _process.StandardOutput.ReadLine());
        }

        public void Dispose()
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(10_000)) _process.Kill(entireProcessTree: true);
            _process.Dispose();
        }
    }

    private static void SkipUnlessFlock() => Skip.IfNot(File.Exists("/usr/bin/flock") || File.Exists("/bin/flock"), "util-linux's flock(1) is not installed");

    [SkippableFact]
    public void An_export_into_a_folder_another_process_is_writing_stops_with_exit_3_and_writes_nothing()
    {
        SkipUnlessFlock();
        using var dir = new TempDir();
        var outDir = dir["export"];
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        using (new ForeignHolder(OutputLock.PathFor(outDir + "/")))  // the same folder, spelt with a trailing slash
        {
            Assert.Equal(ExitCodes.Busy, ExportCommand.Run(run.Artifacts, null, outDir, stdout, stderr));
            Assert.Matches($"^error: {System.Text.RegularExpressions.Regex.Escape(outDir)} is being written by .*; wait for it to finish or give another --out$", stderr.ToString().TrimEnd());
            Assert.False(Directory.Exists(outDir));
            Assert.DoesNotContain(Directory.GetFileSystemEntries(dir.Path), e => Path.GetFileName(e).StartsWith(".export", StringComparison.Ordinal));
        }
        stderr.GetStringBuilder().Clear();
        Assert.True(ExportCommand.Run(run.Artifacts, null, outDir, stdout, stderr) == 0, stderr.ToString());
        Assert.True(File.Exists(Path.Combine(outDir, "SHA256SUMS")));
    }

    [SkippableFact]
    public void A_predict_into_a_folder_another_process_is_writing_stops_with_exit_3_and_writes_nothing()
    {
        SkipUnlessFlock();
        PhotoTestData.SkipUnlessAvailable();
        using var dir = new TempDir();
        var photo = CopyAstronaut(dir["in"]);
        var outDir = dir["out"];
        using (new ForeignHolder(OutputLock.PathFor(outDir)))
        {
            var (code, stdout, stderr) = Predict(photo, "--out", outDir);
            Assert.Equal(ExitCodes.Busy, code);
            Assert.Contains("is being written by", stderr);
            Assert.Single(stderr.TrimEnd().Split('\n'));
            Assert.False(Directory.Exists(outDir));
        }
        var (again, _, errors) = Predict(photo, "--out", outDir);
        Assert.True(again == 0, errors);
    }

    [SkippableFact]
    public void A_deeply_nested_or_broken_cascade_is_one_line_with_its_line_not_a_crash()
    {
        PhotoTestData.SkipUnlessAvailable();
        using var dir = new TempDir();
        var photo = CopyAstronaut(dir["in"]);
        // 200,000 open tags: OpenCV's recursive parser overflowed the native stack on this and killed the process.
        var deep = Path.Combine(dir.Path, "deep.xml");
        File.WriteAllText(deep, "<?xml version=\"1.0\"?>\n<opencv_storage>\n" + string.Concat(Enumerable.Repeat("<a>", 200_000)));
        var (code, _, stderr) = Predict(photo, "--out", dir["out1"], "--cascade", deep);
        Assert.Equal(2, code);
        Assert.Matches(@"^error: .*deep\.xml: line 3: XML nested more than 64 deep; not a Haar cascade$", stderr.TrimEnd());

        var broken = Path.Combine(dir.Path, "broken.xml");
        File.WriteAllText(broken, "<?xml version=\"1.0\"?>\n<opencv_storage>\n<cascade>\n</opencv_storage>\n");
        (code, _, stderr) = Predict(photo, "--out", dir["out2"], "--cascade", broken);
        Assert.Equal(2, code);
        Assert.Matches(@"^error: .*broken\.xml: line 4: not a Haar cascade: ", stderr.TrimEnd());
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }
}

/// <summary>Full disks, on a real small tmpfs: an export or a predict whose outputs do not fit is exit 2 with one line and
/// leaves nothing half-written.</summary>
public sealed partial class PhotoCommandTests
{
    [SkippableFact]
    public void An_export_that_does_not_fit_is_exit_2_and_leaves_nothing()
    {
        using var disk = new Fer.Flow.Tests.Hardening.SmallTmpfs(300); // the members' weights are megabytes
        var stderr = new StringWriter();
        Assert.Equal(ExitCodes.BadInput, ExportCommand.Run(run.Artifacts, null, Path.Combine(disk.Path, "export"), TextWriter.Null, stderr));
        Assert.Matches(@"^error: cannot write the export to .*/export: No space left on device", stderr.ToString());
        Assert.Single(stderr.ToString().TrimEnd().Split('\n'));
        Assert.Empty(disk.Leftovers());
    }

    [SkippableFact]
    public void A_predict_into_a_full_disk_is_exit_2_and_leaves_no_partial_file()
    {
        PhotoTestData.SkipUnlessAvailable();
        using var dir = new TempDir();
        var photo = CopyAstronaut(dir["in"]);
        using var disk = new Fer.Flow.Tests.Hardening.SmallTmpfs(256);
        var outDir = Path.Combine(disk.Path, "out");
        Directory.CreateDirectory(outDir);
        disk.Fill();
        var (code, _, stderr) = Predict(photo, "--out", outDir);
        Assert.Equal(ExitCodes.BadInput, code);
        // (The first write to fail is the annotated copy, which OpenCV reports as "could not write".)
        Assert.StartsWith($"error: cannot write the outputs in {outDir}: ", stderr);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        // The folder and its (empty) log may be there; no result file, whole or partial, and no temporary file.
        Assert.All(disk.Leftovers(), p => Assert.True(p is "out" or "out/log.clef" || p.StartsWith("out/annotated", StringComparison.Ordinal) && !p.EndsWith(".tmp", StringComparison.Ordinal), p));
        Assert.DoesNotContain(disk.Leftovers(), p => p.EndsWith(".png", StringComparison.Ordinal) || p.Contains("faces."));
    }
}
