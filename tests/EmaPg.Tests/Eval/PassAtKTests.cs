using EmaPg.Eval;

namespace EmaPg.Tests.Eval;

public class PassAtKTests
{
    [Theory]
    // 1 - C(n-c,k)/C(n,k), computed by hand:
    [InlineData(10, 0, 1, 0.0)]
    [InlineData(10, 3, 1, 0.3)]                 // pass@1 = c/n
    [InlineData(10, 3, 2, 1 - 21.0 / 45)]       // C(7,2)=21, C(10,2)=45
    [InlineData(5, 2, 3, 1 - 1.0 / 10)]         // C(3,3)=1, C(5,3)=10
    [InlineData(4, 1, 4, 1.0)]                  // fewer than k failures
    [InlineData(20, 5, 10, 1 - 3003.0 / 184756)] // C(15,10)=3003, C(20,10)=184756
    public void MatchesHandComputedValues(int n, int c, int k, double expected) =>
        Assert.Equal(expected, PassAtK.Estimate(n, c, k), 12);

    [Fact]
    public void StaysAccurateForLargeN()
    {
        // C(1000, 500) overflows double; the product form must not. pass@1 is exactly c/n.
        Assert.Equal(0.123, PassAtK.Estimate(1000, 123, 1), 12);
        double v = PassAtK.Estimate(1000, 1, 500);
        Assert.Equal(0.5, v, 12); // one correct of n: probability it is among k drawn = k/n
    }

    [Fact]
    public void MeanAveragesProblemsAndRejectsBadArguments()
    {
        Assert.Equal((0.25 + 0.5) / 2, PassAtK.Mean([1, 2], 4, 1), 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => PassAtK.Estimate(4, 5, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => PassAtK.Estimate(4, 1, 5));
    }
}
