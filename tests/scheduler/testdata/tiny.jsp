# 3x3 handmade job shop
3 3
0 3 1 2 2 2
0 2 2 1 1 4
1 4 2 3 0 1
