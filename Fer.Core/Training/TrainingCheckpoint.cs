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
    public const int CurrentFormat = 2; // 2: hashes.json with every file's SHA-256
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
        HistoryFile = "history.parquet", StateFile = "state.json", HashesFile = "hashes.json";
    private const string Prefix = "epoch-", TempPrefix = ".tmp-", DamagedPrefix = ".damaged-";
    private static readonly string[] Files = [ModelFile, OptimizerFile, BestFile, HistoryFile, StateFile];

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
            // Written last: a checkpoint is trusted only when every file still has the hash it was written with.
            var hashes = Files.ToDictionary(f => f, f => Sha256(Path.Combine(tmp, f)));
            WriteFile(Path.Combine(tmp, HashesFile), writer => writer.Write(JsonSerializer.SerializeToUtf8Bytes(hashes, Json)));

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

    /// <summary>
    /// The newest checkpoint whose files all match the hashes written with them, or null. A damaged one (a file
    /// missing, truncated or changed, unreadable state, another format) is renamed aside (.damaged-epoch-NNNN-...)
    /// and reported in <paramref name="damaged"/>, and the next older one tried. Removes leftovers of interrupted writes.
    /// </summary>
    public static (CheckpointState State, string Path)? TryLoadLatest(string checkpointDir, List<(string Path, string Problem)>? damaged = null)
    {
        if (!Directory.Exists(checkpointDir)) return null;
        foreach (var tmp in Directory.EnumerateDirectories(checkpointDir, TempPrefix + "*"))
            Directory.Delete(tmp, recursive: true);
        foreach (var (_, path) in Checkpoints(checkpointDir).OrderByDescending(c => c.Epoch).ToList())
        {
            var problem = Verify(path, out var state);
            if (problem is null) return (state!, path);
            var aside = Path.Combine(checkpointDir, $"{DamagedPrefix}{Path.GetFileName(path)}-{Guid.NewGuid():N}");
            Directory.Move(path, aside);
            damaged?.Add((path, problem));
        }
        return null;
    }

    /// <summary>Sets a checkpoint aside that passed its hashes but could not be loaded; training then starts afresh.</summary>
    public static string SetAside(string checkpointPath)
    {
        var aside = Path.Combine(Path.GetDirectoryName(checkpointPath)!, $"{DamagedPrefix}{Path.GetFileName(checkpointPath)}-{Guid.NewGuid():N}");
        Directory.Move(checkpointPath, aside);
        return aside;
    }

    /// <summary>Why the checkpoint cannot be trusted, or null (then <paramref name="state"/> is its state).</summary>
    internal static string? Verify(string path, out CheckpointState? state)
    {
        state = null;
        try
        {
            var hashesPath = Path.Combine(path, HashesFile);
            if (!File.Exists(hashesPath)) return $"{hashesPath} is missing";
            var hashes = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllBytes(hashesPath), Json);
            if (hashes is null) return $"{hashesPath} is empty";
            foreach (var file in Files)
            {
                var filePath = Path.Combine(path, file);
                if (Fer.Core.Storage.FileStat.Of(filePath).Kind != Fer.Core.Storage.FileKind.Regular) return $"{filePath} is missing or not a regular file";
                if (!hashes.TryGetValue(file, out var expected) || expected != Sha256(filePath)) return $"{filePath} does not match its SHA-256";
            }
            var statePath = Path.Combine(path, StateFile);
            var read = JsonSerializer.Deserialize<CheckpointState>(File.ReadAllBytes(statePath), Json);
            if (read is null || read.Model is null || read.Fingerprint is null) return $"{statePath}: empty or incomplete checkpoint state";
            if (read.Format != CheckpointState.CurrentFormat)
                return $"{statePath}: checkpoint format {read.Format}, this version reads {CheckpointState.CurrentFormat}";
            state = read;
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or NotSupportedException)
        {
            return $"{path}: {e.Message}";
        }
    }

    private static string Sha256(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream));
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
