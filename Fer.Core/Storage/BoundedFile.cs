namespace Fer.Core.Storage;

/// <summary>
/// Reads of files that Fer writes and later trusts only so far (manifests, records, output records, logs): a file larger
/// than its kind ever is, a sparse file claiming gigabytes included, is refused by its size before a byte is read, so a
/// damaged or planted file costs an error (or a recomputation), never all the memory.
/// </summary>
public static class BoundedFile
{
    /// <summary>The file's text, or an <see cref="InvalidDataException"/> naming the file, its size and the limit.</summary>
    public static string ReadAllText(string path, long maxBytes, string what)
    {
        long bytes = new FileInfo(path).Length;
        if (bytes > maxBytes)
            throw new InvalidDataException($"{path}: {bytes:N0} bytes, more than a {what} ever holds ({maxBytes:N0} at most)");
        return File.ReadAllText(path);
    }

    /// <summary>
    /// The file's lines, read as a stream: a line longer than <paramref name="maxLineChars"/> is not kept whole but given
    /// as null (its length counted, the rest of it skipped), so one huge line costs no more memory than the limit.
    /// </summary>
    public static IEnumerable<string?> ReadLines(string path, int maxLineChars)
    {
        using var reader = new StreamReader(path, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
        var line = new System.Text.StringBuilder();
        bool tooLong = false;
        var buffer = new char[1 << 16];
        int read;
        while ((read = reader.Read(buffer, 0, buffer.Length)) > 0)
        {
            int start = 0;
            for (int i = 0; i < read; i++)
            {
                if (buffer[i] != '\n') continue;
                Append(buffer, start, i - start);
                yield return Take();
                start = i + 1;
            }
            Append(buffer, start, read - start);
        }
        if (line.Length > 0 || tooLong) yield return Take();

        void Append(char[] chars, int from, int count)
        {
            if (tooLong || count == 0) return;
            if (line.Length + count > maxLineChars) { tooLong = true; line.Clear(); return; }
            line.Append(chars, from, count);
        }

        string? Take()
        {
            var text = tooLong ? null : line.ToString().TrimEnd('\r');
            line.Clear();
            tooLong = false;
            return text;
        }
    }
}
