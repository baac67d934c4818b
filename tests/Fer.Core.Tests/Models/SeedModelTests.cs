using Fer.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Models;

public class SeedModelTests
{
    // Transcribed from ../shared/seed/hw3-report.txt, section 1 (Keras truncates type names to 10 characters there).
    private const string CnnTable = """
        conv2d_1 (Conv2D)	(None, 44, 44, 64)	1664
        zero_padding2d_1 (ZeroPaddin	(None, 48, 48, 64)	0
        max_pooling2d_1 (MaxPooling2	(None, 22, 22, 64)	0
        zero_padding2d_2 (ZeroPaddin	(None, 24, 24, 64)	0
        conv2d_2 (Conv2D)	(None, 22, 22, 64)	36928
        zero_padding2d_3 (ZeroPaddin	(None, 24, 24, 64)	0
        conv2d_3 (Conv2D)	(None, 22, 22, 64)	36928
        average_pooling2d_1 (Average	(None, 10, 10, 64)	0
        zero_padding2d_4 (ZeroPaddin	(None, 12, 12, 64)	0
        dropout_1 (Dropout)	(None, 12, 12, 64)	0
        conv2d_4 (Conv2D)	(None, 10, 10, 96)	55392
        zero_padding2d_5 (ZeroPaddin	(None, 12, 12, 96)	0
        conv2d_5 (Conv2D)	(None, 10, 10, 128)	110720
        zero_padding2d_6 (ZeroPaddin	(None, 12, 12, 128)	0
        dropout_2 (Dropout)	(None, 12, 12, 128)	0
        conv2d_6 (Conv2D)	(None, 10, 10, 128)	147584
        zero_padding2d_7 (ZeroPaddin	(None, 12, 12, 128)	0
        average_pooling2d_2 (Average	(None, 5, 5, 128)	0
        dropout_3 (Dropout)	(None, 5, 5, 128)	0
        flatten_1 (Flatten)	(None, 3200)	0
        dense_1 (Dense)	(None, 900)	2880900
        activation_1 (Activation)	(None, 900)	0
        dropout_4 (Dropout)	(None, 900)	0
        dense_2 (Dense)	(None, 900)	810900
        activation_2 (Activation)	(None, 900)	0
        dropout_5 (Dropout)	(None, 900)	0
        dense_3 (Dense)	(None, 7)	6307
        activation_3 (Activation)	(None, 7)	0
        """;

    // Section 2.
    private const string DnnTable = """
        dense_1 (Dense)	(None, 1024)	2360320
        activation_1 (Activation)	(None, 1024)	0
        dropout_1 (Dropout)	(None, 1024)	0
        dense_2 (Dense)	(None, 1024)	1049600
        activation_2 (Activation)	(None, 1024)	0
        dropout_2 (Dropout)	(None, 1024)	0
        dense_3 (Dense)	(None, 768)	787200
        activation_3 (Activation)	(None, 768)	0
        dropout_3 (Dropout)	(None, 768)	0
        dense_4 (Dense)	(None, 768)	590592
        activation_4 (Activation)	(None, 768)	0
        dropout_4 (Dropout)	(None, 768)	0
        dense_5 (Dense)	(None, 512)	393728
        activation_5 (Activation)	(None, 512)	0
        dropout_5 (Dropout)	(None, 512)	0
        dense_6 (Dense)	(None, 512)	262656
        activation_6 (Activation)	(None, 512)	0
        dropout_6 (Dropout)	(None, 512)	0
        dense_7 (Dense)	(None, 7)	3591
        activation_7 (Activation)	(None, 7)	0
        """;

    public static TheoryData<string> SeedModels => new() { "seed-cnn", "seed-dnn" };

    [Theory]
    [MemberData(nameof(SeedModels))]
    public void SummaryRowsMatchTheReportRowForRow(string name)
    {
        using var model = ModelRegistry.Create(name);
        var expected = (name == "seed-cnn" ? CnnTable : DnnTable).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var rows = ModelSummary.Rows(model);
        Assert.Equal(expected.Length, rows.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            var cells = expected[i].Split('\t');
            var layer = cells[0][..cells[0].IndexOf(' ')];
            var type = cells[0][(cells[0].IndexOf('(') + 1)..].TrimEnd(')');
            Assert.Equal(layer, rows[i].Name);
            Assert.StartsWith(type, rows[i].KerasType);
            Assert.Equal(cells[1], rows[i].OutputShape);
            Assert.Equal(long.Parse(cells[2]), rows[i].Params);
        }
    }

    [Fact]
    public void ParameterTotalsAreExactlyTheReports()
    {
        using var cnn = new SeedCnn();
        using var dnn = new SeedDnn();
        Assert.Equal(4_087_323, cnn.ParameterCount());
        Assert.Equal(5_447_687, dnn.ParameterCount());
        var text = ModelSummary.Format(cnn);
        Assert.Contains("Total params: 4,087,323", text);
        Assert.Contains("Trainable params: 4,087,323", text);
        Assert.Contains("Non-trainable params: 0", text);
        Assert.Contains("conv2d_1 (Conv2D)", text);
    }

    [Fact]
    public void TheSeedCnnExplainsAtTheLayersTheReportUsed()
    {
        using var model = new SeedCnn();
        Assert.Equal(("conv2d_6", "max_pooling2d_1", "conv2d_1"), (model.CamLayer, model.FilterLayer, model.OutputLayer));
        using var dnn = new SeedDnn();
        Assert.Equal((null, null, null), (dnn.CamLayer, dnn.FilterLayer, dnn.OutputLayer)); // nothing spatial to explain
    }

    [Fact]
    public void LayersAreAddressedByTheirKerasNames()
    {
        using var model = new SeedCnn();
        using var x = torch.rand(3, 1, 48, 48);
        using var pooled = model.ForwardTo("max_pooling2d_1", x);
        Assert.Equal(new long[] { 3, 64, 22, 22 }, pooled.shape);
        var e = Assert.Throws<ArgumentException>(() => model.LayerIndex("conv2d_9"));
        Assert.Contains("conv2d_1, zero_padding2d_1, max_pooling2d_1", e.Message);
        Assert.Contains(model.state_dict().Keys, k => k.StartsWith("conv2d_1.") && k.EndsWith("weight"));
        Assert.Contains("dense_3.weight", model.state_dict().Keys);
    }

    [Fact]
    public void VggCountsBatchNormStatisticsAsNonTrainable()
    {
        using var model = ModelRegistry.Create("vgg-bn", hyper: new Dictionary<string, string> { ["width"] = "0.25" });
        var rows = ModelSummary.Rows(model);
        Assert.Equal("batch_normalization_1", rows[1].Name);
        Assert.Equal(4 * 16, rows[1].Params);
        Assert.True(ModelSummary.NonTrainableParameters(model) > 0);
        Assert.Equal(model.ParameterCount() + ModelSummary.NonTrainableParameters(model), rows.Sum(r => r.Params));
    }

    [Fact]
    public void SavedWeightsLoadIntoAFreshModelAndGiveTheSameOutputs()
    {
        var path = Path.Combine(Path.GetTempPath(), $"fer-seedcnn-{Guid.NewGuid():N}.pt");
        try
        {
            torch.manual_seed(1);
            using var a = new SeedCnn();
            a.SetInputNormalization(0.5f, 0.25f);
            a.eval();
            a.save(path);
            torch.manual_seed(2);
            using var b = new SeedCnn();
            b.load(path);
            b.eval();
            using var x = torch.rand(2, 1, 48, 48);
            using var ya = a.call(x);
            using var yb = b.call(x);
            Assert.True(ya.eq(yb).all().item<bool>());
            Assert.Equal((0.5f, 0.25f), b.InputNormalization);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void DropoutIsActiveInTrainingAndOffInEvaluation()
    {
        using var model = new SeedDnn(dropout: 0.5);
        using var x = torch.rand(4, 1, 48, 48);
        model.train();
        using var t1 = model.call(x);
        using var t2 = model.call(x);
        Assert.False(t1.eq(t2).all().item<bool>());
        model.eval();
        using var e1 = model.call(x);
        using var e2 = model.call(x);
        Assert.True(e1.eq(e2).all().item<bool>());
    }

    [Fact]
    public void TheRegistryRejectsUnknownModelsAndHyperparameters()
    {
        Assert.Contains("seed-cnn", ModelRegistry.Names);
        Assert.Contains("registered models: " + string.Join(", ", ModelRegistry.Names), Assert.Throws<ArgumentException>(() => ModelRegistry.Create("resnet")).Message);
        var e = Assert.Throws<ArgumentException>(() => ModelRegistry.Create("seed-cnn", hyper: new Dictionary<string, string> { ["width"] = "2" }));
        Assert.Contains("conv_dropout, dense_dropout", e.Message);
        Assert.Throws<ArgumentException>(() => ModelRegistry.Create("seed-dnn", hyper: new Dictionary<string, string> { ["dropout"] = "lots" }));
        using var custom = (SeedCnn)ModelRegistry.Create("seed-cnn", hyper: new Dictionary<string, string> { ["conv_dropout"] = "0.1" });
        Assert.Equal(4_087_323, custom.ParameterCount());
    }

    /// <summary>Keras' glorot_uniform: |w| within sqrt(6 / (fan_in + fan_out)), spread close to limit / sqrt(3); zero biases.</summary>
    [Fact]
    public void SeedModelsStartFromKerasGlorotUniform()
    {
        using var model = new SeedCnn();
        model.Initialize(5);
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.EndsWith("bias")) { Assert.Equal(0.0, p.abs().max().item<float>()); continue; }
            long receptive = p.dim() > 2 ? p.shape[2] * p.shape[3] : 1;
            double limit = Math.Sqrt(6.0 / ((p.shape[0] + p.shape[1]) * receptive));
            Assert.True(p.abs().max().item<float>() <= limit * 1.0001, $"{name}: max {p.abs().max().item<float>()} > {limit}");
            double std = p.std().item<float>();
            Assert.InRange(std, limit / Math.Sqrt(3) * 0.9, limit / Math.Sqrt(3) * 1.1);
        }
    }
}
