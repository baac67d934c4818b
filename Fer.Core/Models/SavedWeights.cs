using static TorchSharp.torch;

namespace Fer.Core.Models;

/// <summary>
/// What a TorchSharp weights file (<c>Module.save</c>) holds, read without loading it: each tensor's name and shape.
/// TorchSharp's own load only says "mismatched tensor shape" or "expected 20, but found 67 entries"; this says which
/// tensor differs and how, so a member whose model changed since it was trained is one clear line.
/// The file is not trusted: counts, name lengths, ranks and sizes are bounded and must fit inside the file.
/// </summary>
public static class SavedWeights
{
    private const int MaxTensors = 100_000, MaxNameBytes = 4096, MaxRank = 16;

    /// <summary>The tensors' names and shapes, in the file's order.</summary>
    public static IReadOnlyList<(string Name, long[] Shape)> Describe(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        using var reader = new BinaryReader(stream);
        long count = Decode(reader);
        if (count is < 0 or > MaxTensors) throw new InvalidDataException($"{path}: claims {count} tensors");
        var tensors = new List<(string, long[])>((int)count);
        for (long i = 0; i < count; i++)
        {
            var name = reader.ReadString();
            if (name.Length > MaxNameBytes) throw new InvalidDataException($"{path}: tensor {i} has a name of {name.Length} characters");
            var type = (ScalarType)Decode(reader);
            long rank = Decode(reader);
            if (rank is < 0 or > MaxRank) throw new InvalidDataException($"{path}: tensor {name} claims rank {rank}");
            var shape = new long[rank];
            long elements = 1;
            for (int d = 0; d < rank; d++)
            {
                shape[d] = Decode(reader);
                if (shape[d] < 0) throw new InvalidDataException($"{path}: tensor {name} has a negative size");
                elements = checked(elements * shape[d]);
            }
            long bytes = checked(elements * ElementSize(type, path, name));
            if (bytes > stream.Length - stream.Position) throw new InvalidDataException($"{path}: tensor {name} runs past the end of the file");
            stream.Seek(bytes, SeekOrigin.Current);
            tensors.Add((name, shape));
        }
        return tensors;
    }

    /// <summary>How the saved tensors differ from <paramref name="model"/>'s (the first difference in one phrase), or null when they fit.</summary>
    public static string? Mismatch(nn.Module model, string path)
    {
        var saved = Describe(path).ToDictionary(t => t.Name, t => t.Shape, StringComparer.Ordinal);
        var expected = model.state_dict();
        foreach (var (name, tensor) in expected)
        {
            if (!saved.TryGetValue(name, out var shape)) return $"{name} is not in the saved weights";
            if (!shape.SequenceEqual(tensor.shape)) return $"{name} is [{string.Join(", ", shape)}] in the saved weights, [{string.Join(", ", tensor.shape)}] in the model";
        }
        var extra = saved.Keys.FirstOrDefault(k => !expected.ContainsKey(k));
        return extra is null ? null : $"the saved weights hold {extra}, which the model does not have";
    }

    private static int ElementSize(ScalarType type, string path, string name) => type switch
    {
        ScalarType.Byte or ScalarType.Int8 or ScalarType.Bool => 1,
        ScalarType.Int16 or ScalarType.Float16 or ScalarType.BFloat16 => 2,
        ScalarType.Int32 or ScalarType.Float32 => 4,
        ScalarType.Int64 or ScalarType.Float64 or ScalarType.ComplexFloat32 => 8,
        ScalarType.ComplexFloat64 => 16,
        _ => throw new InvalidDataException($"{path}: tensor {name} has an unknown element type {(int)type}"),
    };

    /// <summary>TorchSharp's variable-length (LEB128) integer.</summary>
    private static long Decode(BinaryReader reader)
    {
        long value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            byte b = reader.ReadByte();
            value |= (long)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
        }
        throw new InvalidDataException("a size in the weights file is longer than 64 bits");
    }
}
