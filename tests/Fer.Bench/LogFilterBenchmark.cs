using System.Diagnostics;
using Fer.Flow.Audit;
using Fer.Flow.Cli;
using Fer.Flow.Logging;
using Serilog.Events;

namespace Fer.Bench;

/// <summary>Reads and filters a 100,000-event run log, as `fer logs --stage train --grep cnn` does.</summary>
public sealed class LogFilterBenchmark : IBenchmark
{
    public string Name => "logs";
    public string Description => "read + filter a 100,000-event CLEF run log";

    public void Run(bool quick)
    {
        int events = quick ? 20_000 : 100_000;
        var dir = Path.Combine(Path.GetTempPath(), "fer-bench-logs-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            using (var log = RunLog.Create(dir, "bench", "bench", console: false))
            {
                var train = log.ForContext("Stage", "train");
                for (int i = 0; i < events; i++)
                    train.Information("Epoch {Epoch} of {Model}: loss {Loss:0.0000}, valid accuracy {ValidAccuracy:0.0000}", i, i % 2 == 0 ? "cnn" : "dnn", 1.0 / (i + 1), 0.5);
            }
            var path = Path.Combine(dir, RunLog.FileName);
            var best = double.MaxValue;
            int matched = 0;
            for (int round = 0; round < 3; round++)
            {
                var clock = Stopwatch.StartNew();
                var read = ClefLog.Read(path);
                matched = AuditCommands.Filter(read.Events, "train", LogEventLevel.Information, "dnn").Count();
                best = Math.Min(best, clock.Elapsed.TotalSeconds);
            }
            Console.WriteLine($"  {events:N0} events ({new FileInfo(path).Length / 1e6:0.0} MB): read + filter in {best:0.000} s (best of 3), {matched:N0} matched, {events / best:N0} events/s");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
