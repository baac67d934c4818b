using Fer.Core.Training;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Training;

/// <summary>Rule 3: a checkpoint is hash-checked before it is trusted; a damaged one is set aside and training goes on
/// from scratch (only the latest is kept) instead of every rerun failing with "read past the end of the stream".</summary>
[Collection(TorchRandomCollection.Name)]
public class CheckpointDamageTests
{
    private static readonly Fer.Core.Data.FaceSet Train = ToyFaces.Make(96, seed: 1);
    private static readonly Fer.Core.Data.FaceSet Valid = ToyFaces.Make(30, seed: 2);

    private static TrainOptions Options(int epochs, string dir) => new()
    {
        Epochs = epochs, BatchSize = 32, LearningRate = 3e-3, Seed = 7, CheckpointDir = dir, PrefetchBatches = 2,
    };

    [Theory]
    [InlineData("model.bin", "truncate")]
    [InlineData("best.bin", "flip")]
    [InlineData("state.json", "delete")]
    [InlineData("hashes.json", "delete")]
    public void ADamagedCheckpointIsSetAsideAndTrainingStartsAfresh(string file, string damage)
    {
        using var dir = new TempDir();
        using (var model = new TinyModel(initSeed: 30))
            new Trainer(model, Options(2, dir.Path), CPU, "tiny").Fit(Train, Valid);
        var path = Path.Combine(dir.Path, "epoch-0002", file);
        switch (damage)
        {
            case "truncate": using (var s = new FileStream(path, FileMode.Open)) s.SetLength(s.Length / 2); break;
            case "flip": var bytes = File.ReadAllBytes(path); bytes[^10] ^= 0xFF; File.WriteAllBytes(path, bytes); break;
            default: File.Delete(path); break;
        }

        using var again = new TinyModel(initSeed: 30);
        var result = new Trainer(again, Options(3, dir.Path), CPU, "tiny").Fit(Train, Valid);
        Assert.Equal(0, result.ResumedFromEpoch);
        Assert.Equal([1, 2, 3], result.History.Select(h => h.Epoch));
        var (damagedPath, problem) = Assert.Single(result.DamagedCheckpoints);
        Assert.EndsWith("epoch-0002", damagedPath);
        Assert.Contains(file, problem);
        Assert.Single(Directory.GetDirectories(dir.Path, ".damaged-epoch-0002-*"));
        Assert.Equal(["epoch-0003"], Directory.GetDirectories(dir.Path, "epoch-*").Select(Path.GetFileName));

        // The fresh start is the same training as one on an empty folder.
        using var dir2 = new TempDir();
        using var clean = new TinyModel(initSeed: 30);
        var reference = new Trainer(clean, Options(3, dir2.Path), CPU, "tiny").Fit(Train, Valid);
        Assert.Equal(reference.History.Select(h => h.Loss), result.History.Select(h => h.Loss));
    }

    [Fact]
    public void AnIntactCheckpointStillResumes()
    {
        using var dir = new TempDir();
        using (var model = new TinyModel(initSeed: 31))
            new Trainer(model, Options(2, dir.Path), CPU, "tiny").Fit(Train, Valid);
        using var again = new TinyModel(initSeed: 31);
        var result = new Trainer(again, Options(3, dir.Path), CPU, "tiny").Fit(Train, Valid);
        Assert.Equal(2, result.ResumedFromEpoch);
        Assert.Empty(result.DamagedCheckpoints);
    }
}
