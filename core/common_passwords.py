"""Passwords that guessers try first, lower-cased: the international top lists and the Chinese ones
(pinyin words and names, 520 / 1314 love numbers, QQ and keyboard patterns, as the leaked CSDN / 178 /
7k7k sets rank them). :mod:`core.password_policy` refuses these, and any password that is one of the
words below with digits or symbols stuck on either end.

Kept in a module (not a data file) so that it ships with the package like any other code.
"""

from __future__ import annotations

_WORDS = """
123456 1234567 12345678 123456789 1234567890 12345678910 0123456789 0987654321 9876543210
111111 1111111 11111111 111111111 1111111111 000000 00000000 0000000000 666666 66666666 888888 88888888
123123 123123123 1231234 321321 112233 11223344 121212 12121212 123321 1234554321 147258369 159357
147258 258369 369258147 123654 456789 654321 987654321 100200 123qwe 123abc abc123 abcd1234 abc123456
a123456 a1234567 a12345678 a123456789 aa123456 aaa123456 a5201314 qq123456 qq123456789 q123456
1q2w3e4r 1q2w3e4r5t 1q2w3e4r5t6y 1qaz2wsx 1qaz2wsx3edc 1qazxsw2 zaq12wsx zaq1xsw2 qazwsx qazwsxedc
qwerty qwerty123 qwertyuiop qwe123 qweasd qweasdzxc asdfgh asdfghjkl asd123 zxcvbn zxcvbnm zxc123
password passw0rd password1 password123 p@ssw0rd p@ssword pass1234 pass123 admin admin123 admin1234
administrator root root123 toor test test123 test1234 guest user user123 login welcome welcome1
letmein changeme default secret master hello hello123 iloveyou iloveyou1 monkey dragon football
baseball superman batman sunshine princess shadow michael jennifer charlie trustno1 starwars
whatever freedom computer internet access system manager service support company office
sales finance account accounting money boss demo demo123 sample example temp temp123 abcdefg
woaini woaini1314 woaini520 woaini521 woaini123 woaini1314520 aini1314 aini520 wo520 woaiwojia
woaiwoma woaimama woaibaba woaiziji woaini0 iloveyou1314 love1314 love520 5201314 1314520 521521
520520 52013145201314 13145201314520 1314521 25251325 7758521 7758258 147852 147852369 258258
zhang wang li liu chen yang huang zhao wu zhou xu sun ma zhu hu guo he lin luo gao zheng liang xie
zhangwei wangwei wangfang liwei lina zhangmin lijing wangjing liuwei wangxiuying zhangli wangli
lixiuying zhangjing liqiang wangqiang zhangyong wangjun zhangjun liyang wangyang zhangyan liyan
zhangtao zhangchao liming wangming liuyang chenjie yangyang huanghua zhaolei xiaoming xiaohong
xiaowang xiaoli xiaozhang laowang dawang wanghao zhangsan lisi wangwu zhaoliu
woshishui woshiniba nishishui nihao nihao123 nihaoma zhongguo zhongguoren china china123 beijing
shanghai guangzhou shenzhen hangzhou chengdu wuhan nanjing tianjin chongqing xian
aaaaaa aaaaaaaa aaaaaaaaaa abcdef abcdefgh abcdefghij abcabc abc12345 qwertyui asdfasdf zxczxc
shabi shabi123 caonima wodemima mima mima123 mimamima kaixin kuaile xingfu pingan fucai facai
facai888 fadacai hao123 baidu taobao alipay zhifubao weixin wechat tencent qqqqqq qq5201314
tiantian xiaoxiao dandan lele huahua beibei baobao baobei baobei520 laogong laopo qinqin
sunliang liu123 wang123 zhang123 li123456 chen123 yang123 huang123 zhao123 zhou123
88888888a 12345a 123456a 123456aa 123456abc 123456qq 123456789a 1234qwer 1234abcd 12qwaszx
gongzuo daikuan xindai jiekuan huankuan zhudai kehu xiaoshou jingli zhuguan caiwu fengkong cuishou
scrm crm loan dai huanle wanmei yongyuan aiqing mengxiang tiankong yueliang taiyang
"""

COMMON: frozenset[str] = frozenset(_WORDS.split())
