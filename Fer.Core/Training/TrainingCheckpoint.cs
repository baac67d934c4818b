using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Fer.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Training;

/// <summary>The scalar part of a checkpoint: where training stands after <see cref="Epoch"/> finished epochs.</summary>
internal sealed record CheckpointState
{
    public const int CurrentFormat = 1;
    public int Format { get; init; } = CurrentFormat;
    public required string Model { get; init; }
    /// <summary>What must match for a resume to continue the same run (see Trainer.Fingerprint).</summary>
    public required string Fingerprint { get; init; }
    public required int Epoch { get; init; }
    public required int BestEpoch { get; init; }
    public required double BestMonitor { get; init; }
    public required int EarlyStoppingWait { get; init; }
    public required double PlateauBest { get; init; }
    public required int PlateauWait { get; init; }
    /// <summary>The learning rate for the next epoch.</summary>
    public required double LearningRate { get; init; }
    public required bool StoppedEarly { get; init; }
}

/// <summary>
/// Checkpoints in a directory: each one is a subdirectory epoch-NNNN holding model.bin (the weights after that
/// epoch), optimizer.bin (Adam's moments and step counts), best.bin (the best epoch's weights so far),
/// history.parquet and state.json. A checkpoint is written in full into a hidden temporary directory and then
/// renamed into place, so a reader sees either the previous checkpoint or the new one, never a partial one;
/// older checkpoints are removed after the rename.
/// </summary>
internal static class TrainingCheckpoint
{
    public const string ModelFile = "model.bin", OptimizerFile = "optimizer.bin", BestFile = "best.bin",
        HistoryFile = "history.parquet", StateFile = "state.json";
    private const string Prefix = "epoch-", TempPrefix = ".tmp-";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, // BestMonitor starts at +/-Infinity
    };

    public static void Save(string checkpointDir, CheckpointState state, FerModel model, optim.Optimizer optimizer,
        Dictionary<string, Tensor> bestWeights, IReadOnlyList<EpochRecord> history)
    {
        Directory.CreateDirectory(checkpointDir);
        var tmp = Path.Combine(checkpointDir, $"{TempPrefix}{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        try
        {
            WriteFile(Path.Combine(tmp, ModelFile), writer => model.save(writer));
            WriteFile(Path.Combine(tmp, OptimizerFile), writer => ((TorchSharp.Modules.OptimizerHelper)optimizer).save_state_dict(writer));
            WriteFile(Path.Combine(tmp, BestFile), writer => nn.Module.save_state_dict(writer, bestWeights));
            Task.Run(() => TrainingHistoryStore.WriteAsync(Path.Combine(tmp, HistoryFile), history)).GetAwaiter().GetResult();
            WriteFile(Path.Combine(tmp, StateFile), writer => writer.Write(JsonSerializer.SerializeToUtf8Bytes(state, Json)));

            var target = Path.Combine(checkpointDir, DirName(state.Epoch));
            if (Directory.Exists(target)) Directory.Delete(target, recursive: true); // only after a manual edit of the dir
            Directory.Move(tmp, target);
        }
        catch
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
            throw;
        }
        foreach (var (epoch, path) in Checkpoints(checkpointDir))
            if (epoch < state.Epoch) Directory.Delete(path, recursive: true);
    }

    /// <summary>The newest complete checkpoint in the directory, or null. Removes leftovers of interrupted writes.</summary>
    public static (CheckpointState State, string Path)? TryLoadLatest(string checkpointDir)
    {
        if (!Directory.Exists(checkpointDir)) return null;
        foreach (var tmp in Directory.EnumerateDirectories(checkpointDir, TempPrefix + "*"))
            Directory.Delete(tmp, recursive: true);
        foreach (var (_, path) in Checkpoints(checkpointDir).OrderByDescending(c => c.Epoch))
        {
            var statePath = Path.Combine(path, StateFile);
            if (!File.Exists(statePath)) continue;
            using var stream = File.OpenRead(statePath);
            var state = JsonSerializer.Deserialize<CheckpointState>(stream, Json)
                ?? throw new InvalidDataException($"{statePath}: empty checkpoint state");
            if (state.Format != CheckpointState.CurrentFormat)
                throw new InvalidDataException($"{statePath}: checkpoint format {state.Format}, this version reads {CheckpointState.CurrentFormat}");
            return (state, path);
        }
        return null;
    }

    public static void LoadOptimizer(string path, optim.Optimizer optimizer)
    {
        using var stream = File.OpenRead(Path.Combine(path, OptimizerFile));
        using var reader = new BinaryReader(stream);
        ((TorchSharp.Modules.OptimizerHelper)optimizer).load_state_dict(reader);
    }

    private static string DirName(int epoch) => Prefix + epoch.ToString("D4", CultureInfo.InvariantCulture);

    private static IEnumerable<(int Epoch, string Path)> Checkpoints(string checkpointDir)
    {
        foreach (var dir in Directory.EnumerateDirectories(checkpointDir, Prefix + "*"))
            if (int.TryParse(Path.GetFileName(dir).AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var epoch))
                yield return (epoch, dir);
    }

    private static void WriteFile(string path, Action<BinaryWriter> write)
    {
        using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            write(writer);
            writer.Flush();
        }
        stream.Flush(flushToDisk: true);
    }
}
