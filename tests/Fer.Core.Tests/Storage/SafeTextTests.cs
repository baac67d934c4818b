using Fer.Core.Photos;
using Fer.Core.Storage;

namespace Fer.Core.Tests.Storage;

public class SafeTextTests
{
    [Theory]
    [InlineData("=2+5.png", "'=2+5.png")]
    [InlineData("+1.png", "'+1.png")]
    [InlineData("-cmd|calc.png", "'-cmd|calc.png")]
    [InlineData("@SUM(A1).png", "'@SUM(A1).png")]
    [InlineData("\t=1", "'\t=1")]
    [InlineData("=HYPERLINK(\"x\",\"y\")", "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\"")]
    [InlineData("a,b.png", "\"a,b.png\"")]
    [InlineData("face 1.png", "face 1.png")]
    public void ACsvTextCellASpreadsheetWouldRunIsMadeInertAndQuotedWhereNeeded(string text, string cell) =>
        Assert.Equal(cell, SafeText.CsvField(text));

    [Fact]
    public void FacesCsvWritesAPhotoNamedLikeAFormulaAsText()
    {
        var row = new FaceRow("=2+5.png", null, null, new FaceBox(1, 2, 3, 4), 0, "-Angry", 0.5f, [0.5f, 0.5f]);
        var csv = PhotoCsv.FormatCsv([row], ["-Angry", "Happy"]).Split('\n');
        Assert.Equal("file,frame,x,y,w,h,label,confidence,'-Angry,Happy", csv[0]);
        Assert.StartsWith("'=2+5.png,,1,2,3,4,'-Angry,0.5,0.5,0.5", csv[1]);
    }

    [Theory]
    [InlineData("id \u001b]0;pwned\u0007 done", "id \\x1b]0;pwned\\x07 done")]
    [InlineData("two\nlines\r\n", "two\\nlines\\r\\n")]
    [InlineData("c1 \u009b31m del \u007f", "c1 \\u009b31m del \\x7f")]
    [InlineData("plain é ✓", "plain é ✓")]
    public void TerminalTextShowsControlCharactersAsEscapes(string text, string shown) => Assert.Equal(shown, SafeText.Terminal(text));
}
