using Parquet.Serialization;

namespace Fer.Core.Training;

/// <summary>Reads and writes a training history as a Parquet file with one row per epoch.</summary>
public static class TrainingHistoryStore
{
    /// <summary>A settable row type for ParquetSerializer; columns are named like the <see cref="EpochRecord"/> fields.</summary>
    private sealed class EpochRow
    {
        public int Epoch { get; set; }
        public double Loss { get; set; }
        public double Accuracy { get; set; }
        public double ValidLoss { get; set; }
        public double ValidAccuracy { get; set; }
        public double LearningRate { get; set; }
        public double Seconds { get; set; }
        public double ImagesPerSecond { get; set; }
    }

    /// <summary>Writes the history to <paramref name="path"/> via a temporary file renamed into place.</summary>
    public static async Task WriteAsync(string path, IReadOnlyList<EpochRecord> history, CancellationToken ct = default)
    {
        var rows = history.Select(h => new EpochRow
        {
            Epoch = h.Epoch, Loss = h.Loss, Accuracy = h.Accuracy, ValidLoss = h.ValidLoss, ValidAccuracy = h.ValidAccuracy,
            LearningRate = h.LearningRate, Seconds = h.Seconds, ImagesPerSecond = h.ImagesPerSecond,
        }).ToList();
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = $"{full}.{Guid.NewGuid():N}.tmp";
        try
        {
            await using (var stream = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            {
                await ParquetSerializer.SerializeAsync(rows, stream, cancellationToken: ct).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    public static async Task<IReadOnlyList<EpochRecord>> ReadAsync(string path, CancellationToken ct = default)
    {
        await using var stream = File.OpenRead(path);
        var rows = (await ParquetSerializer.DeserializeAsync<EpochRow>(stream, cancellationToken: ct).ConfigureAwait(false)).Data;
        return rows.Select(r => new EpochRecord(r.Epoch, r.Loss, r.Accuracy, r.ValidLoss, r.ValidAccuracy,
            r.LearningRate, r.Seconds, r.ImagesPerSecond)).ToList();
    }
}
