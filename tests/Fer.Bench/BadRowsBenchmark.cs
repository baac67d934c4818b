using System.Diagnostics;
using System.Text;
using Fer.Core.Data;

namespace Fer.Bench;

/// <summary>
/// Memory of a skipping read (issue 12, rule 2): 900,000 short bad rows and 10 good ones (about 4.3 MB), against a
/// clean FER2013-sized file. Prints the process's peak resident set (VmHWM, reset before each read through
/// /proc/self/clear_refs) above what it was before the read, and the managed bytes allocated.
/// </summary>
public sealed class BadRowsBenchmark : IBenchmark
{
    public string Name => "bad-rows";
    public string Description => "peak memory of reading 900,000 bad rows with on_error=skip, against a clean 35,887-row file";

    public void Run(bool quick)
    {
        int bad = quick ? 90_000 : 900_000, clean = quick ? 4_000 : 35_887;
        var dir = Directory.CreateTempSubdirectory("fer-bench-bad-rows-").FullName;
        try
        {
            var good = string.Join(' ', Enumerable.Range(0, 2304).Select(i => (i * 7) % 256));
            var badPath = Path.Combine(dir, "bad.csv");
            using (var w = new StreamWriter(badPath, false, new UTF8Encoding(false), 1 << 20) { NewLine = "\n" })
            {
                w.WriteLine("emotion,pixels,Usage");
                for (int i = 0; i < 10; i++) w.WriteLine($"{i % 7},{good},Training");
                string[] kinds = ["x", "9,1,x", "0,a,b"];
                for (int i = 0; i < bad; i++) w.WriteLine(kinds[i % 3]);
            }
            var cleanPath = Path.Combine(dir, "clean.csv");
            using (var w = new StreamWriter(cleanPath, false, new UTF8Encoding(false), 1 << 20) { NewLine = "\n" })
            {
                w.WriteLine("emotion,pixels,Usage");
                for (int i = 0; i < clean; i++) w.WriteLine($"{i % 7},{good},Training");
            }
            Measure($"{bad:N0} bad rows + 10 good ({new FileInfo(badPath).Length / 1e6:0.0} MB), skip", badPath, OnBadRow.Skip);
            Measure($"{clean:N0} good rows ({new FileInfo(cleanPath).Length / 1e6:0.0} MB), fail", cleanPath, OnBadRow.Fail);
        }
        finally { Directory.Delete(dir, true); }
    }

    private static void Measure(string what, string path, OnBadRow onBadRow)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        var process = Process.GetCurrentProcess();
        long before = process.WorkingSet64, allocated = GC.GetTotalAllocatedBytes(precise: true);
        var clock = Stopwatch.StartNew();
        var result = FerCsvReader.Read(path, new FerCsvReadOptions(onBadRow));
        double seconds = clock.Elapsed.TotalSeconds;
        process.Refresh();
        Console.WriteLine($"  {what}: {result.Faces.Count:N0} rows kept, {result.SkippedCount:N0} skipped ({result.Skipped.Count} kept one by one) in {seconds:0.00} s; " +
                          $"peak RSS +{(process.PeakWorkingSet64 - before) / 1e6:0} MB over {before / 1e6:0} MB; {(GC.GetTotalAllocatedBytes(precise: true) - allocated) / 1e6:0} MB allocated; " +
                          $"pixels kept {result.Faces.Pixels.Length / 1e6:0.0} MB");
    }
}
