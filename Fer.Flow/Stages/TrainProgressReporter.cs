using Fer.Core.Training;
using Fer.Flow.Pipeline;
using Serilog;

namespace Fer.Flow.Stages;

/// <summary>
/// A member's training progress as a row of the run's progress display (member, epoch, batch, loss, accuracy,
/// images/s, ETA and a bar over all its epochs); each plain line is also a structured debug event in the run log.
/// </summary>
public sealed class TrainProgressReporter(ProgressRow row, ILogger log) : IProgress<TrainProgress>, IDisposable
{
    public void Report(TrainProgress p)
    {
        if (row.Report(Line(p), (double)(p.Epoch - 1) * p.Batches + p.Batch, (double)p.Epochs * p.Batches))
            log.Debug("Progress {Model} epoch {Epoch}/{Epochs} batch {Batch}/{Batches} loss {Loss:0.000} accuracy {Accuracy:0.000} {ImagesPerSecond:0} images/s",
                p.Model, p.Epoch, p.Epochs, p.Batch, p.Batches, p.Loss, p.Accuracy, p.ImagesPerSecond);
    }

    internal static string Line(TrainProgress p) =>
        $"{p.Model}: epoch {p.Epoch}/{p.Epochs} batch {p.Batch}/{p.Batches} loss {p.Loss:0.000} acc {p.Accuracy:0.000} {p.ImagesPerSecond:0} img/s ETA {p.Eta:hh\\:mm\\:ss}";

    public void Dispose() => row.Dispose();
}
