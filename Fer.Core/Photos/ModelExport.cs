using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Fer.Core.Data;
using Fer.Core.Ensemble;
using Fer.Core.Models;
using TorchSharp;
using TorchSharp.PyBridge;

namespace Fer.Core.Photos;

/// <summary>A member to export: its trained model and how the registry rebuilds it.</summary>
public sealed record ExportMember(string Name, string Architecture, ModelFamily Family, IReadOnlyDictionary<string, double> Hyperparameters,
    FerModel Model, double Weight);

public sealed record ExportedFile(string Name, long Bytes, string Sha256);

public sealed record ExportResult(string Dir, IReadOnlyList<ExportedFile> Files);

/// <summary>
/// Writes a run's ensemble for PyTorch: each member's state_dict as &lt;member&gt;.pt (torch.save's zip format, via
/// TorchSharp.PyBridge), model.json (architecture and hyperparameters, layers, input side and normalisation,
/// classes, ensemble weights, TTA, each file's SHA-256), probe.json (a few faces with every member's logits, to
/// check a loaded copy) and SHA256SUMS. Written into a temporary folder renamed into place.
/// </summary>
public static class ModelExport
{
    public const string Format = "fer-export-1";
    public const int ProbeImages = 4;

    public static ExportResult Write(string outDir, string runId, IReadOnlyList<ExportMember> members, IReadOnlyList<string> classNames, int side, TestTimeAugmentation tta)
    {
        if (members.Count == 0) throw new ArgumentException("nothing to export: no members", nameof(members));
        var full = Path.GetFullPath(outDir);
        if (File.Exists(full)) throw new PhotoInputException(outDir, "is a file; --out needs a folder");
        if (Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any())
            throw new PhotoInputException(outDir, "exists and is not empty; give a new or empty folder");
        var parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(temp);
        try
        {
            var probe = SyntheticFaces.Generate(new SyntheticFaceOptions(ProbeImages, 20261203, side));
            var memberDocs = new List<object>();
            var probeLogits = new Dictionary<string, float[][]>(StringComparer.Ordinal);
            foreach (var m in members)
            {
                if (!IsSafeName(m.Name)) throw new ArgumentException($"member name '{m.Name}' is not a safe file name");
                var file = $"{m.Name}.pt";
                var cpu = m.Model; // exported from the CPU: a state_dict that loads anywhere
                cpu.to(torch.CPU);
                cpu.eval();
                cpu.save_py(Path.Combine(temp, file));
                probeLogits[m.Name] = Logits(cpu, probe);
                var (mean, std) = cpu.InputNormalization;
                memberDocs.Add(new
                {
                    m.Name, m.Architecture, Family = m.Family.ToString(), Hyperparameters = m.Hyperparameters, Weight = m.Weight,
                    Parameters = cpu.ParameterCount(), File = file,
                    Normalization = new { Mean = mean, Std = std },
                    StateDict = cpu.state_dict().Select(kv => new { Key = kv.Key, Shape = kv.Value.shape }).ToList(),
                    Layers = cpu.Layers.Select(l => new { l.Name, Type = l.KerasType, Ops = LayerSpecs.Of(l.Module) }).ToList(),
                });
            }

            var probeDoc = new
            {
                Description = "Synthetic faces (rows of side*side pixels 0..255), each member's logits in eval mode on pixels/255, "
                    + "and the ensemble's probabilities (weights and test-time augmentation as model.json's ensemble says)",
                Side = side,
                Images = Enumerable.Range(0, probe.Count).Select(i => probe.Image(i).ToArray().Select(b => (int)b).ToArray()).ToList(),
                Logits = probeLogits,
                Probabilities = EnsembleProbabilities(members, probe, tta),
            };
            File.WriteAllText(Path.Combine(temp, "probe.json"), JsonSerializer.Serialize(probeDoc, PhotoCsv.Json));

            var weightsFiles = members.Select(m => Describe(temp, $"{m.Name}.pt")).Append(Describe(temp, "probe.json")).ToList();
            var (first, _) = (members[0].Model.InputNormalization, 0);
            var doc = new
            {
                Format,
                Run = runId,
                Classes = classNames,
                Input = new
                {
                    Side = side, Channels = 1, Layout = "NCHW",
                    Pixels = "grayscale 0..255 divided by 255; each model then applies (x - input_mean) / input_std, buffers in its state_dict (the training pixels' statistics)",
                    Normalization = new { Mean = first.Mean, Std = first.Std },
                },
                Ensemble = new
                {
                    Weights = members.ToDictionary(m => m.Name, m => m.Weight),
                    FlipTta = tta != TestTimeAugmentation.None,
                    Tta = SnakeCase(tta),
                    Combine = tta switch
                    {
                        TestTimeAugmentation.None => "p = sum_m weight_m * softmax(model_m(x))",
                        TestTimeAugmentation.Flip => "p = sum_m weight_m * (softmax(model_m(x)) + softmax(model_m(flip_w(x)))) / 2",
                        _ => "p = sum_m weight_m * mean over v in views_m of softmax(model_m(v)); views_m: for a member with a centre_crop of margin m, "
                           + "x rolled by (0,0), (m,m), (m,-m), (-m,m), (-m,-m) on (h, w) and each of those mirrored (ten crops); otherwise x and flip_w(x)",
                    },
                },
                Members = memberDocs,
                Files = weightsFiles.ToDictionary(f => f.Name, f => new { f.Bytes, f.Sha256 }),
            };
            File.WriteAllText(Path.Combine(temp, "model.json"), JsonSerializer.Serialize(doc, PhotoCsv.Json));
            var all = weightsFiles.Append(Describe(temp, "model.json")).ToList();
            File.WriteAllText(Path.Combine(temp, "SHA256SUMS"), string.Concat(all.Select(f => $"{f.Sha256}  {f.Name}\n")), new UTF8Encoding(false));

            if (Directory.Exists(full)) Directory.Delete(full); // empty, checked above
            Directory.Move(temp, full);
            return new ExportResult(full, all);
        }
        catch
        {
            try { Directory.Delete(temp, true); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Logits [N][C] of a model in eval mode for a face set.</summary>
    /// <summary>The weighted ensemble's class probabilities on <paramref name="faces"/> (CPU, eval mode), one row per face.</summary>
    private static float[][] EnsembleProbabilities(IReadOnlyList<ExportMember> members, FaceSet faces, TestTimeAugmentation tta)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var x = faces.ImagesTensor();
        var sum = members.Select(m => Predictor.Softmax(m.Model, x, tta).mul(m.Weight)).Aggregate((a, b) => a.add(b)).contiguous();
        var flat = sum.data<float>().ToArray();
        int c = (int)sum.shape[1];
        return Enumerable.Range(0, faces.Count).Select(i => flat.AsSpan(i * c, c).ToArray()).ToArray();
    }

    public static float[][] Logits(FerModel model, FaceSet faces)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var logits = model.call(faces.ImagesTensor()).to(torch.CPU).contiguous();
        var flat = logits.data<float>().ToArray();
        int c = (int)logits.shape[1];
        return Enumerable.Range(0, faces.Count).Select(i => flat.AsSpan(i * c, c).ToArray()).ToArray();
    }

    public static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static ExportedFile Describe(string dir, string name)
    {
        var path = Path.Combine(dir, name);
        return new ExportedFile(name, new FileInfo(path).Length, Sha256(path));
    }

    private static string SnakeCase(TestTimeAugmentation tta) => tta switch
    {
        TestTimeAugmentation.None => "none",
        TestTimeAugmentation.Flip => "flip",
        _ => "ten_crop",
    };

    private static bool IsSafeName(string name) =>
        name.Length > 0 && name.All(ch => char.IsLetterOrDigit(ch) || ch is '-' or '_' or '.') && name != "." && name != ".." && name != "model" && name != "probe";
}
