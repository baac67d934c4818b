using Fer.Core.Training;
using Serilog;

namespace Fer.Flow.Stages;

/// <summary>
/// Training progress: on a terminal one live line per model (epoch, batch, loss, accuracy, images/s, ETA),
/// redrawn in place; otherwise a plain line every 15 seconds, so CI logs stay readable.
/// </summary>
public sealed class TrainProgressReporter(bool interactive, ILogger log) : IProgress<TrainProgress>, IDisposable
{
    private DateTime _lastPlain = DateTime.MinValue;
    private bool _drew;

    public void Report(TrainProgress p)
    {
        var line = $"{p.Model}: epoch {p.Epoch}/{p.Epochs} batch {p.Batch}/{p.Batches} loss {p.Loss:0.000} acc {p.Accuracy:0.000} {p.ImagesPerSecond:0} img/s ETA {p.Eta:hh\\:mm\\:ss}";
        if (interactive)
        {
            lock (Console.Out) { Console.Write("\r" + line.PadRight(Console.WindowWidth > 0 ? Math.Min(Console.WindowWidth - 1, 120) : 100)); }
            _drew = true;
        }
        else if (DateTime.UtcNow - _lastPlain > TimeSpan.FromSeconds(15))
        {
            _lastPlain = DateTime.UtcNow;
            log.Debug("Progress {Model} epoch {Epoch}/{Epochs} batch {Batch}/{Batches} loss {Loss:0.000} accuracy {Accuracy:0.000} {ImagesPerSecond:0} images/s", p.Model, p.Epoch, p.Epochs, p.Batch, p.Batches, p.Loss, p.Accuracy, p.ImagesPerSecond);
            Console.WriteLine(line);
        }
    }

    public void Dispose()
    {
        if (_drew) lock (Console.Out) Console.WriteLine();
    }
}
