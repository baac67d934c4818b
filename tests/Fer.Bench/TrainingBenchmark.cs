using System.Diagnostics;
using Fer.Core.Data;
using Fer.Core.Models;
using Fer.Core.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Fer.Bench;

/// <summary>
/// Trainer overhead and memory. (1) Throughput: Trainer.Fit on the seed CNN (batch 128, no validation) against a
/// bare TorchSharp loop (same model, Adam, cross-entropy) over pre-made tensors; goal: ratio >= 0.95.
/// (2) Memory: resident set size after each of ~10 short epochs with augmentation, validation and checkpoints;
/// goal: epoch 10 within 5% of epoch 2.
/// </summary>
public sealed class TrainingBenchmark : IBenchmark
{
    public string Name => "train";
    public string Description => "Trainer vs bare TorchSharp loop (images/s), and RSS across epochs";

    private const int Side = 48, Classes = 7, BatchSize = 128;

    public void Run(bool quick)
    {
        int threads = Math.Min(2, Environment.ProcessorCount);
        torch.set_num_threads(threads);
        int images = quick ? 256 : 512, epochs = quick ? 1 : 3, rounds = quick ? 1 : 3;
        int memoryEpochs = quick ? 4 : 10, memoryImages = quick ? 256 : 1024;
        Console.WriteLine($"torch threads {torch.get_num_threads()}, model {ModelLabel}, batch {BatchSize}");

        var train = BenchFaces.Random(images, seed: 1);
        using (var probe = MakeModel()) Console.WriteLine($"model parameters: {probe.ParameterCount():N0}");

        // The loops take turns, each with a warm-up epoch and then timed epochs of `images` images, and the best
        // epoch of each counts: other processes share these cores, and the fastest epoch is the least disturbed.
        // Images per CPU-second (all threads) is reported too: it is less sensitive to that sharing.
        Console.WriteLine($"throughput: {rounds} rounds x {epochs} timed epochs of {images} images per loop");
        var bare = new List<EpochRate>();
        var trainer = new List<EpochRate>();
        for (int round = 1; round <= rounds; round++)
        {
            var b = BareLoop(train, epochs);
            var t = TrainerLoop(train, epochs);
            Console.WriteLine($"  round {round}: bare {Describe(b)}; Trainer {Describe(t)}");
            bare.AddRange(b);
            trainer.AddRange(t);
        }
        double bareWall = bare.Max(r => r.Wall), trainerWall = trainer.Max(r => r.Wall);
        double bareCpu = bare.Max(r => r.Cpu), trainerCpu = trainer.Max(r => r.Cpu);
        Console.WriteLine($"throughput: bare loop {bareWall:F1} images/s, Trainer {trainerWall:F1} images/s, " +
            $"ratio {trainerWall / bareWall:F3} (goal >= 0.95)");
        Console.WriteLine($"throughput per CPU-second: bare loop {bareCpu:F1}, Trainer {trainerCpu:F1}, ratio {trainerCpu / bareCpu:F3}");

        MemoryRun(memoryEpochs, memoryImages);
    }

    /// <summary>One timed epoch: images per wall-clock second and per CPU-second of the whole process.</summary>
    private readonly record struct EpochRate(double Wall, double Cpu);

    private static string Describe(List<EpochRate> rates) =>
        string.Join(" ", rates.Select(r => $"{r.Wall:F1}")) + " images/s";

    private static TimeSpan CpuTime()
    {
        using var self = Process.GetCurrentProcess();
        return self.TotalProcessorTime;
    }

    private const string ModelLabel = "seed-cnn (SeedCnn, the report's CNN)";
    private static FerModel MakeModel()
    {
        torch.manual_seed(42);
        return new SeedCnn(numClasses: 7, side: 48);
    }

    /// <summary>A plain loop over pre-made tensors: forward, loss, backward, step; no statistics, no shuffling.</summary>
    private static List<EpochRate> BareLoop(FaceSet set, int epochs)
    {
        using var model = MakeModel();
        model.train();
        using var optimizer = optim.Adam(model.parameters(), lr: 1e-3);
        using var images = set.ImagesTensor();
        using var labels = set.LabelsTensor();
        var rates = new List<EpochRate>();
        for (int epoch = 0; epoch <= epochs; epoch++) // epoch 0 warms up
        {
            var clock = Stopwatch.StartNew();
            var cpu = CpuTime();
            for (int start = 0; start < set.Count; start += BatchSize)
            {
                using var scope = NewDisposeScope();
                int n = Math.Min(BatchSize, set.Count - start);
                var x = images.narrow(0, start, n);
                var y = labels.narrow(0, start, n);
                optimizer.zero_grad();
                var loss = nn.functional.cross_entropy(model.call(x), y);
                loss.backward();
                optimizer.step();
            }
            if (epoch > 0)
                rates.Add(new(set.Count / clock.Elapsed.TotalSeconds, set.Count / (CpuTime() - cpu).TotalSeconds));
        }
        return rates;
    }

    /// <summary>Trainer.Fit with no validation set: its own training-phase images/s, and CPU time between epoch ends.</summary>
    private static List<EpochRate> TrainerLoop(FaceSet set, int epochs)
    {
        using var model = MakeModel();
        var options = new TrainOptions { Epochs = epochs + 1, BatchSize = BatchSize, LearningRate = 1e-3, Seed = 1 };
        var cpuAtEpochEnd = new List<TimeSpan>();
        var result = new Trainer(model, options, CPU, "bench").Fit(set, FaceSet.Empty(Side, FaceSet.Fer2013Classes),
            onEpoch: _ => cpuAtEpochEnd.Add(CpuTime()));
        return Enumerable.Range(1, epochs).Select(e => new EpochRate(result.History[e].ImagesPerSecond,
            set.Count / (cpuAtEpochEnd[e] - cpuAtEpochEnd[e - 1]).TotalSeconds)).ToList();
    }

    private static void MemoryRun(int epochs, int images)
    {
        var train = BenchFaces.Random(images, seed: 2);
        var valid = BenchFaces.Random(images / 4, seed: 3);
        var checkpoints = Directory.CreateTempSubdirectory("fer-bench-train-").FullName;
        try
        {
            using var model = MakeModel();
            var options = new TrainOptions
            {
                Epochs = epochs, BatchSize = BatchSize, Seed = 1, CheckpointDir = checkpoints,
                Augmentation = new OnlineAugmentation(HorizontalFlip: true), ReduceLrFactor = 0.5,
            };
            var rss = new List<long>();
            var retained = new List<long>();
            Console.WriteLine($"memory: {epochs} epochs of {images} images, augmentation, {valid.Count} validation images, checkpoint every epoch");
            new Trainer(model, options, CPU, "bench").Fit(train, valid, onEpoch: record =>
            {
                // RSS after an ordinary full GC (garbage awaiting collection is not counted)...
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
                rss.Add(ResidentBytes());
                // ...and what is really held: the GC returns its free segments and malloc its cached free pages
                // (libtorch frees activations into malloc's per-thread arenas, which makes plain RSS wobble by tens
                // of MiB). Trimming after every epoch also makes each epoch's plain RSS start from the same state.
                GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
                if (OperatingSystem.IsLinux()) MallocTrim(0);
                retained.Add(ResidentBytes());
                Console.WriteLine($"  epoch {record.Epoch,2}: RSS {Mib(rss[^1]),7:F1} MiB, retained {Mib(retained[^1]),7:F1} MiB, " +
                    $"live tensors {Tensor.TotalCount}, {record.ImagesPerSecond:F1} images/s, loss {record.Loss:F4}");
            });
            Report("RSS", rss);
            Report("retained", retained);
        }
        finally
        {
            Directory.Delete(checkpoints, recursive: true);
        }
    }

    private static double Mib(long bytes) => bytes / 1048576.0;

    private static void Report(string what, List<long> bytes)
    {
        if (bytes.Count < 2) return;
        long second = bytes[1], last = bytes[^1];
        Console.WriteLine($"memory: {what} epoch 2 {Mib(second):F1} MiB, epoch {bytes.Count} {Mib(last):F1} MiB, " +
            $"change {(last - second) * 100.0 / second:+0.00;-0.00}% (goal within 5%); epochs 2..{bytes.Count} range " +
            $"{Mib(bytes.Skip(1).Min()):F1}..{Mib(bytes.Skip(1).Max()):F1} MiB");
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    /// <summary>VmRSS from /proc/self/status where there is one, else the working set.</summary>
    private static long ResidentBytes()
    {
        const string status = "/proc/self/status";
        if (File.Exists(status))
            foreach (var line in File.ReadLines(status))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim()) * 1024;
        using var self = Process.GetCurrentProcess();
        return self.WorkingSet64;
    }
}
