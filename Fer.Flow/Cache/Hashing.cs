using System.Security.Cryptography;
using System.Text;

namespace Fer.Flow.Cache;

/// <summary>SHA-256 helpers: fingerprints are hex digests of canonical text; files are hashed streaming.</summary>
public static class Hashing
{
    public static string Sha256Hex(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    public static string FileSha256Hex(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>A short fingerprint shown in folder names and logs (16 hex chars = 64 bits).</summary>
    public static string Short(string hex) => hex[..16];
}
