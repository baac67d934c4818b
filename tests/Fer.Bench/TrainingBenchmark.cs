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
        int images = quick ? 256 : 1024;
        int rounds = quick ? 1 : 3;
        int memoryEpochs = quick ? 4 : 10, memoryImages = quick ? 256 : 1024;
        Console.WriteLine($"torch threads {torch.get_num_threads()}, model {ModelLabel}, batch {BatchSize}, {images} images per epoch");

        var train = RandomFaces(images, seed: 1);
        using (var probe = MakeModel()) Console.WriteLine($"model parameters: {probe.ParameterCount():N0}");

        // Interleave the two loops and keep each one's best epoch: other processes share these cores, and the
        // fastest epoch is the one least disturbed by them.
        double bestBare = 0, bestTrainer = 0;
        for (int round = 1; round <= rounds; round++)
        {
            double bare = BareLoop(train, epochs: 2);
            double trainer = TrainerLoop(train, epochs: 2);
            Console.WriteLine($"round {round}: bare {bare:F1} images/s, trainer {trainer:F1} images/s, ratio {trainer / bare:F3}");
            bestBare = Math.Max(bestBare, bare);
            bestTrainer = Math.Max(bestTrainer, trainer);
        }
        Console.WriteLine($"throughput: bare loop {bestBare:F1} images/s, Trainer {bestTrainer:F1} images/s, " +
            $"ratio {bestTrainer / bestBare:F3} (goal >= 0.95)");

        MemoryRun(memoryEpochs, memoryImages);
    }

    // The seed CNN (branch "models") replaces this stand-in once merged.
    private const string ModelLabel = "seed-CNN-shaped stand-in";
    private static FerModel MakeModel()
    {
        torch.manual_seed(42);
        return new SeedShapedCnn();
    }

    /// <summary>Best images/s over the timed epochs of a plain loop: forward, loss, backward, step; no stats, no shuffling.</summary>
    private static double BareLoop(FaceSet set, int epochs)
    {
        using var model = MakeModel();
        model.train();
        using var optimizer = optim.Adam(model.parameters(), lr: 1e-3);
        using var images = set.ImagesTensor();
        using var labels = set.LabelsTensor();
        double best = 0;
        for (int epoch = 0; epoch <= epochs; epoch++) // epoch 0 warms up
        {
            var clock = Stopwatch.StartNew();
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
            double rate = set.Count / clock.Elapsed.TotalSeconds;
            if (epoch > 0) best = Math.Max(best, rate);
        }
        return best;
    }

    /// <summary>Best images/s (training phase) over the timed epochs of Trainer.Fit with no validation set.</summary>
    private static double TrainerLoop(FaceSet set, int epochs)
    {
        using var model = MakeModel();
        var options = new TrainOptions { Epochs = epochs + 1, BatchSize = BatchSize, LearningRate = 1e-3, Seed = 1 };
        var result = new Trainer(model, options, CPU, "bench").Fit(set, FaceSet.Empty(Side, FaceSet.Fer2013Classes));
        return result.History.Skip(1).Max(h => h.ImagesPerSecond);
    }

    private static void MemoryRun(int epochs, int images)
    {
        var train = RandomFaces(images, seed: 2);
        var valid = RandomFaces(images / 4, seed: 3);
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
            Console.WriteLine($"memory: {epochs} epochs of {images} images, augmentation, {valid.Count} validation images, checkpoint every epoch");
            var retained = new Dictionary<int, long>();
            new Trainer(model, options, CPU, "bench").Fit(train, valid, onEpoch: record =>
            {
                // The process as it stands, after an ordinary full GC so that garbage awaiting collection is not counted.
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
                rss.Add(ResidentBytes());
                string extra = "";
                if (record.Epoch == 2 || record.Epoch == epochs)
                {
                    // What is really held: the GC returns its free segments and malloc its cached free pages
                    // (libtorch frees activations into malloc's cache, which makes plain RSS wobble by tens of MiB).
                    // Done only at the two compared epochs so that the plain RSS series stays undisturbed.
                    GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
                    if (OperatingSystem.IsLinux()) MallocTrim(0);
                    retained[record.Epoch] = ResidentBytes();
                    extra = $", retained {Mib(retained[record.Epoch]):F1} MiB";
                }
                Console.WriteLine($"  epoch {record.Epoch,2}: RSS {Mib(rss[^1]),7:F1} MiB{extra}, live tensors {Tensor.TotalCount}, " +
                    $"{record.ImagesPerSecond:F1} images/s, loss {record.Loss:F4}");
            });
            if (rss.Count >= 2)
            {
                long second = rss[1], last = rss[^1];
                Console.WriteLine($"memory: RSS epoch 2 {Mib(second):F1} MiB, epoch {rss.Count} {Mib(last):F1} MiB, " +
                    $"change {Percent(second, last)} (goal within 5%); range over epochs 2..{rss.Count}: " +
                    $"{Mib(rss.Skip(1).Min()):F1}..{Mib(rss.Skip(1).Max()):F1} MiB");
            }
            if (retained.Count == 2)
                Console.WriteLine($"memory: retained epoch 2 {Mib(retained[2]):F1} MiB, epoch {epochs} {Mib(retained[epochs]):F1} MiB, " +
                    $"change {Percent(retained[2], retained[epochs])}");
        }
        finally
        {
            Directory.Delete(checkpoints, recursive: true);
        }
    }

    private static double Mib(long bytes) => bytes / 1048576.0;

    private static string Percent(long from, long to) => $"{(to - from) * 100.0 / from:+0.00;-0.00}%";

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

    private static FaceSet RandomFaces(int count, int seed)
    {
        var random = new Random(seed);
        var pixels = new byte[count * Side * Side];
        random.NextBytes(pixels);
        var labels = Enumerable.Range(0, count).Select(_ => random.Next(Classes)).ToArray();
        var ids = Enumerable.Range(0, count).Select(i => (long)i).ToArray();
        return new FaceSet(Side, FaceSet.Fer2013Classes, ids, labels, ids, new bool[count], new FaceUsage[count], pixels);
    }

    /// <summary>The seed report's CNN layer shapes (48x48 input, about 4.1M parameters), for use until SeedCnn is merged.</summary>
    private sealed class SeedShapedCnn : FerModel
    {
        private readonly List<NamedLayer> _layers = [];
        private readonly ModuleList<nn.Module<Tensor, Tensor>> _modules = new();

        public SeedShapedCnn() : base("seed_shaped_cnn")
        {
            void Add(string name, string type, nn.Module<Tensor, Tensor> module) { _layers.Add(new(name, type, module)); _modules.Add(module); }
            Add("conv2d_1", "Conv2D", nn.Sequential(nn.Conv2d(1, 64, 5), nn.ReLU()));
            Add("zero_padding2d_1", "ZeroPadding2D", nn.ZeroPad2d(2));
            Add("max_pooling2d_1", "MaxPooling2D", nn.MaxPool2d(5, 2));
            Add("zero_padding2d_2", "ZeroPadding2D", nn.ZeroPad2d(1));
            Add("conv2d_2", "Conv2D", nn.Sequential(nn.Conv2d(64, 64, 3), nn.ReLU()));
            Add("zero_padding2d_3", "ZeroPadding2D", nn.ZeroPad2d(1));
            Add("conv2d_3", "Conv2D", nn.Sequential(nn.Conv2d(64, 64, 3), nn.ReLU()));
            Add("average_pooling2d_1", "AveragePooling2D", nn.AvgPool2d(3, 2));
            Add("zero_padding2d_4", "ZeroPadding2D", nn.ZeroPad2d(1));
            Add("dropout_1", "Dropout", nn.Dropout(0.2));
            Add("conv2d_4", "Conv2D", nn.Sequential(nn.Conv2d(64, 96, 3), nn.ReLU()));
            Add("zero_padding2d_5", "ZeroPadding2D", nn.ZeroPad2d(1));
            Add("conv2d_5", "Conv2D", nn.Sequential(nn.Conv2d(96, 128, 3), nn.ReLU()));
            Add("zero_padding2d_6", "ZeroPadding2D", nn.ZeroPad2d(1));
            Add("dropout_2", "Dropout", nn.Dropout(0.2));
            Add("conv2d_6", "Conv2D", nn.Sequential(nn.Conv2d(128, 128, 3), nn.ReLU()));
            Add("zero_padding2d_7", "ZeroPadding2D", nn.ZeroPad2d(1));
            Add("average_pooling2d_2", "AveragePooling2D", nn.AvgPool2d(3, 2));
            Add("dropout_3", "Dropout", nn.Dropout(0.25));
            Add("flatten_1", "Flatten", nn.Flatten());
            Add("dense_1", "Dense", nn.Linear(3200, 900));
            Add("activation_1", "Activation", nn.ReLU());
            Add("dropout_4", "Dropout", nn.Dropout(0.5));
            Add("dense_2", "Dense", nn.Linear(900, 900));
            Add("activation_2", "Activation", nn.ReLU());
            Add("dropout_5", "Dropout", nn.Dropout(0.5));
            Add("dense_3", "Dense", nn.Linear(900, Classes));
            RegisterComponents();
        }

        public override IReadOnlyList<NamedLayer> Layers => _layers;
        public override int InputSide => Side;
        public override int NumClasses => Classes;
    }
}
