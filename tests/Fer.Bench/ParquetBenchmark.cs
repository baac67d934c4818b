using System.Diagnostics;
using Fer.Core.Data;
using Fer.Core.Storage;

namespace Fer.Bench;

/// <summary>Writing and reloading a FER2013-sized face set through the Parquet tensor store (what a cached stage costs).</summary>
public sealed class ParquetBenchmark : IBenchmark
{
    public string Name => "parquet";
    public string Description => "write + reload 35,887 48x48 faces as Parquet";

    public void Run(bool quick)
    {
        int n = quick ? 5_000 : 35_887;
        var faces = SyntheticFaces.Generate(new SyntheticFaceOptions(n, 1));
        var path = Path.Combine(Path.GetTempPath(), $"fer-bench-{Guid.NewGuid():N}.parquet");
        try
        {
            double write = double.MaxValue, read = double.MaxValue;
            for (int round = 0; round < 3; round++)
            {
                var clock = Stopwatch.StartNew();
                ParquetTensorStore.WriteFacesAsync(path, faces).GetAwaiter().GetResult();
                write = Math.Min(write, clock.Elapsed.TotalSeconds);
                clock.Restart();
                var back = ParquetTensorStore.ReadFacesAsync(path).GetAwaiter().GetResult();
                read = Math.Min(read, clock.Elapsed.TotalSeconds);
                if (back.Count != n) throw new InvalidOperationException("round trip lost rows");
            }
            var mb = new FileInfo(path).Length / 1e6;
            Console.WriteLine($"  {n:N0} faces, {mb:0.0} MB on disk: write {write:0.000} s, reload {read:0.000} s ({n / read:N0} images/s), best of 3");
        }
        finally { File.Delete(path); }
    }
}
