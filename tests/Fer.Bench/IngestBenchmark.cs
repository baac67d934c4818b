using System.Diagnostics;
using System.Text;
using Fer.Core.Data;

namespace Fer.Bench;

/// <summary>
/// FerCsvReader on a FER2013-sized Kaggle file (35,887 rows of 48x48 pixels, about 290 MB, random pixels with a
/// fixed seed), against the obvious string.Split + int.Parse reader on the same file.
/// </summary>
public sealed class IngestBenchmark : IBenchmark
{
    public string Name => "ingest";
    public string Description => "parse a FER2013-sized fer2013.csv (MB/s), against string.Split + int.Parse";

    public void Run(bool quick)
    {
        int rows = quick ? 4_000 : 35_887;
        var path = Path.Combine(Path.GetTempPath(), $"fer-bench-ingest-{Guid.NewGuid():N}.csv");
        try
        {
            Generate(path, rows);
            double mb = new FileInfo(path).Length / 1e6;
            FerCsvReader.Read(path); // warm-up (JIT, page cache)
            double best = double.MaxValue;
            for (int round = 0; round < 3; round++)
            {
                var clock = Stopwatch.StartNew();
                var result = FerCsvReader.Read(path);
                best = Math.Min(best, clock.Elapsed.TotalSeconds);
                if (result.Faces.Count != rows) throw new InvalidOperationException("wrong row count");
            }
            var naiveClock = Stopwatch.StartNew();
            int naiveRows = Naive(path);
            double naive = naiveClock.Elapsed.TotalSeconds;
            Console.WriteLine($"  {rows:N0} rows, {mb:0.0} MB: FerCsvReader {best:0.000} s = {mb / best:0} MB/s, {rows / best:N0} rows/s (best of 3)");
            Console.WriteLine($"  string.Split + int.Parse: {naive:0.000} s = {mb / naive:0} MB/s ({naiveRows:N0} rows); speed-up {naive / best:0.0}x");
        }
        finally { File.Delete(path); }
    }

    private static void Generate(string path, int rows)
    {
        var random = new Random(2013);
        using var writer = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 20) { NewLine = "\n" };
        writer.WriteLine("emotion,pixels,Usage");
        var line = new StringBuilder(10_000);
        for (int r = 0; r < rows; r++)
        {
            line.Clear().Append(random.Next(7)).Append(',');
            for (int p = 0; p < 2304; p++) { if (p > 0) line.Append(' '); line.Append(random.Next(256)); }
            line.Append(r % 10 == 8 ? ",PublicTest" : r % 10 == 9 ? ",PrivateTest" : ",Training");
            writer.WriteLine(line);
        }
    }

    private static int Naive(string path)
    {
        int rows = 0;
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            var fields = line.Split(',');
            _ = int.Parse(fields[0]);
            var pixels = fields[1].Split(' ').Select(int.Parse).Select(v => (byte)v).ToArray();
            if (pixels.Length == 2304) rows++;
        }
        return rows;
    }
}
